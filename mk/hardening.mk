# Hardening: load, batching, scale-out behind HAProxy (docs/results/load.md).
# The sanitizer targets (test-asan, test-tsan) are in the Makefile, the
# fuzz targets in mk/fuzz.mk.
#   make test-scale    2 `eex serve` workers behind HAProxy, 16 edges x 100
#                      requests, one worker killed mid-load (then: stopped
#                      gracefully): 0 lost, 0 wrong (skips, saying so, when
#                      haproxy is not installed)
#   make scale-demo    the same with 3 workers and 64 edges x 200 requests
#   make bench-load    64 x 200 load, batching at K = 1, 8, 64 (the tiny
#                      model, MobileNetV2-EE-224, a synthetic model with a
#                      weight-bound head), scale-out: docs/results/load.md
#                      and bench/load/results.json
#
# This file is included before the Makefile's `all` rule: keep `all` the default goal.
_hardening_mk_goal := $(.DEFAULT_GOAL)

.PHONY: test-scale scale-demo bench-load

test-scale: offload-tools
	@mkdir -p build/ee
	$(PY) tests/ee/make_tiny.py build/ee/tiny.eex
	BUILD=$(BUILD) $(PY) tests/scale/scale.py --workers 2 --clients 16 --requests 100
	BUILD=$(BUILD) $(PY) tests/scale/scale.py --workers 2 --clients 16 --requests 100 --signal TERM \
	    --label "scale-out, graceful stop"

scale-demo: offload-tools
	@mkdir -p build/ee
	$(PY) tests/ee/make_tiny.py build/ee/tiny.eex
	BUILD=$(BUILD) $(PY) tests/scale/scale.py --workers 3 --clients 64 --requests 200 --label "scale-out demo"

build/load/fathead.eex: bench/load/make_fathead.py bench/load/modelgen.py tests/export/test_export.py
	@mkdir -p build/load
	$(PY) bench/load/make_fathead.py $@

build/load/alexnet-ee.eex: bench/load/make_alexnet.py bench/load/modelgen.py tests/export/test_export.py
	@mkdir -p build/load
	$(PY) bench/load/make_alexnet.py $@

bench-load: offload-tools build/load/fathead.eex build/load/alexnet-ee.eex
	@mkdir -p build/ee
	$(PY) tests/ee/make_tiny.py build/ee/tiny.eex
	BUILD=$(BUILD) $(PY) bench/load/run.py --note @bench/load/batching.md

.DEFAULT_GOAL := $(_hardening_mk_goal)
