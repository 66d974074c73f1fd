# The Fashion-MNIST reproduction and the demo (the README's main job).
#   make experiment   every distortion level x expert mode x p_tar through `eex eval`
#                     -> docs/results/fmnist.md, fmnist.json and PNG plots
#   make demo         tools/demo.sh on models/fmnist-ee.eex
_experiment_mk_goal := $(.DEFAULT_GOAL)
.PHONY: experiment demo

experiment: $(BUILD)/eex
	$(PY) bench/experiments/fmnist.py --eex $(BUILD)/eex --model models/fmnist-ee.eex --out docs/results

demo: $(BUILD)/eex
	BUILD=$(BUILD) PY=$(PY) sh tools/demo.sh

.DEFAULT_GOAL := $(_experiment_mk_goal)
