# Threshold research (docs/thresholds.md): per-exit thresholds, calibration,
# the adaptive policy, outage and missed-deadline probabilities.
#   make test-thresholds        `eex thresholds` against brute force on synthetic logs,
#                               its errors on bad logs; calibration, adaptive and the
#                               eval metrics on the shipped model (tests/thresholds/)
#   make experiment-thresholds  docs/results/thresholds.md on Fashion-MNIST: choose on
#                               the validation split, report on the test split
_thresholds_mk_goal := $(.DEFAULT_GOAL)
.PHONY: test-thresholds experiment-thresholds

FMNIST_DIR ?= /usr/share/datasets/fashion-mnist

test-thresholds: $(BUILD)/eex $(BUILD)/tests/test_metrics
	$(BUILD)/tests/test_metrics --jobs 2
	$(PY) tests/thresholds/test_thresholds.py $(BUILD)
	FMNIST_DIR=$(FMNIST_DIR) $(PY) tests/thresholds/test_cli.py $(BUILD)

experiment-thresholds: $(BUILD)/eex
	$(PY) bench/experiments/thresholds.py --eex $(BUILD)/eex --model models/fmnist-ee.eex \
	    --dataset $(FMNIST_DIR) --out docs/results

.DEFAULT_GOAL := $(_thresholds_mk_goal)

$(BUILD)/tests/test_metrics: tests/thresholds/test_metrics.c tools/metrics.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lcriterion $(LDLIBS)
