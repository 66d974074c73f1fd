# The Fashion-MNIST reproduction and the demo (the README's main job).
#   make experiment   every distortion level x expert mode x p_tar through `eex eval`
#                     -> docs/results/fmnist.md, fmnist.json and PNG plots
#   make demo         tools/demo.sh on models/fmnist-ee.eex
#   FMNIST_DIR=DIR    where the Fashion-MNIST IDX files are (default: Debian's
#                     dataset-fashion-mnist, which `make deps` installs)
_experiment_mk_goal := $(.DEFAULT_GOAL)
.PHONY: experiment demo

experiment: $(BUILD)/eex
	@PY=$(PY) sh tools/need.sh "make experiment" fmnist=$(FMNIST_DIR) py:matplotlib=python3-matplotlib
	$(PY) bench/experiments/fmnist.py --eex $(BUILD)/eex --model models/fmnist-ee.eex --dataset $(FMNIST_DIR) --out docs/results

demo: $(BUILD)/eex
	@BUILD=$(BUILD) PY=$(PY) DATA=$(FMNIST_DIR) sh tools/demo.sh

.DEFAULT_GOAL := $(_experiment_mk_goal)
