# The reproduction of the paper's table and the demo (the README's main job).
#   make experiment   every distortion level x expert mode x p_tar through `eex eval`
#                     -> docs/results/fmnist.md, fmnist.json and PNG plots (Fashion-MNIST,
#                     the shipped models/fmnist-ee.eex)
#   make experiment DATASET=DIR [NAME=N]  the same on the model `make train DATASET=DIR`
#                     wrote (EXPERIMENT_MODEL=TRAIN_OUT/N-ee.eex) -> EXPERIMENT_OUT=
#                     TRAIN_OUT/results/N.md, .json, plots, titled N
#   EXPERIMENT_LIMIT=K  images per condition (default: all)
#   make demo         tools/demo.sh on models/fmnist-ee.eex
#   FMNIST_DIR=DIR    where the Fashion-MNIST IDX files are (default: Debian's
#                     dataset-fashion-mnist, which `make deps` installs)
_experiment_mk_goal := $(.DEFAULT_GOAL)
.PHONY: experiment demo
EXPERIMENT_LIMIT ?= 0

ifeq ($(DATASET),)
EXPERIMENT_ARGS := --model models/fmnist-ee.eex --dataset $(FMNIST_DIR) --out docs/results
EXPERIMENT_NEEDS := fmnist=$(FMNIST_DIR)
else
EXPERIMENT_MODEL ?= $(TRAIN_OUT)/$(DATASET_NAME)-ee.eex
EXPERIMENT_OUT ?= $(TRAIN_OUT)/results
EXPERIMENT_ARGS = --model $(EXPERIMENT_MODEL) --dataset $(DATASET) \
                   --out $(EXPERIMENT_OUT) --name $(DATASET_NAME) --stem $(DATASET_NAME) \
                   --target "make experiment DATASET=$(DATASET)$(if $(NAME), NAME=$(NAME))"
EXPERIMENT_NEEDS = "file:$(EXPERIMENT_MODEL)=make train DATASET=$(DATASET)$(if $(NAME), NAME=$(NAME)) writes it"
endif

experiment: $(BUILD)/eex
	@PY=$(PY) sh tools/need.sh "make experiment" $(EXPERIMENT_NEEDS) py:matplotlib=python3-matplotlib
	$(PY) bench/experiments/fmnist.py --eex $(BUILD)/eex $(EXPERIMENT_ARGS) --limit $(EXPERIMENT_LIMIT)

demo: $(BUILD)/eex
	@BUILD=$(BUILD) PY=$(PY) DATA=$(FMNIST_DIR) sh tools/demo.sh

.DEFAULT_GOAL := $(_experiment_mk_goal)
