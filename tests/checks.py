"""The ok / FAIL lines and their count, shared by the Python suites under
tests/ (tests/offload, tests/ee/test_exit_rule.py and test_distort.py,
tests/pipeline): each puts this folder on sys.path before `import checks`."""
passed = failed = 0


def check(cond, label, detail=""):
    """Prints `ok    label` or `FAIL  label detail`, counts it, returns cond."""
    global passed, failed
    if cond:
        passed += 1
        print(f"ok    {label}")
    else:
        failed += 1
        print(f"FAIL  {label} {detail}")
    return cond


def summary(name=""):
    """Prints `[name: ]P passed, F failed`; the suite's exit code (1 on any failure)."""
    print(f"{name + ': ' if name else ''}{passed} passed, {failed} failed")
    return 1 if failed else 0
