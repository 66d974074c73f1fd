# Training side of the reproduction (train/, converter/distort.py): the whole pipeline
# with Debian's python (torch, CPU): joint training, temperatures, blur/noise experts,
# detector, test evaluation, export.
#   make train        Fashion-MNIST (the default): writes the shipped models/fmnist-ee.eex,
#                     .json and .pt; checkpoints and the log in train/out/ (about 30 min
#                     on 2 idle cores). Byte for byte the committed model on a CPU
#                     of the kind that trained it (models/README.md).
#   make train DATASET=DIR [LABELS=FILE] [NAME=N] [AUGMENT=hflip]
#                     any dataset folder with the four IDX files (train/data.py says
#                     which): everything, N-ee.eex and N-ee.json included, goes to
#                     TRAIN_OUT=train/out/N/ (N defaults to the folder's name); class names from
#                     FILE (one a line) or the class numbers; mean/std measured on the
#                     training file; no augmentation unless AUGMENT names it;
#                     DETECTOR_CHANNELS=1|2|3 the detector's input (train.py --help).
#   make train-fast [DATASET=...]  smoke run on a small subset (a minute or two), into
#                     TRAIN_FAST_OUT=train/out-fast/N/.
#   TRAIN_THREADS=N   torch threads (default 2)
#
# Included before the Makefile's `all` rule: keep `all` the default goal.
_train_mk_goal := $(.DEFAULT_GOAL)

TRAIN_THREADS ?= 2
ifeq ($(DATASET),)
TRAIN_ARGS := --dataset $(FMNIST_DIR) --name fashion-mnist --labels train/labels/fashion-mnist.txt \
              --augment hflip
TRAIN_FULL_ARGS := --out train/out --model models/fmnist-ee.eex --json models/fmnist-ee.json
TRAIN_NEEDS_DATA := fmnist=$(FMNIST_DIR)
else
TRAIN_ARGS := --dataset $(DATASET) --name $(DATASET_NAME) $(if $(LABELS),--labels $(LABELS)) \
              $(if $(AUGMENT),--augment $(AUGMENT)) $(if $(DETECTOR_CHANNELS),--detector-channels $(DETECTOR_CHANNELS))
TRAIN_FULL_ARGS := --out $(TRAIN_OUT)
TRAIN_NEEDS_DATA := "file:$(DATASET)/train-labels-idx1-ubyte$(if $(wildcard $(DATASET)/train-labels-idx1-ubyte),,.gz)=a dataset folder holds the four IDX files of train/data.py"
endif
TRAIN_NEEDS = $(TRAIN_NEEDS_DATA) py:torch=python3-torch py:onnx=python3-onnx py:numpy=python3-numpy

.PHONY: train train-fast test-pipeline

# `make train-fast` and `make experiment` on a 5-class relabelled Fashion-MNIST subset
# (tests/pipeline/test_pipeline.py): labels, mean/std, report title, shipped model kept.
test-pipeline: $(BUILD)/eex
	$(PY) tests/pipeline/test_pipeline.py $(BUILD)

train:
	@PY=$(PY) sh tools/need.sh "make train" $(TRAIN_NEEDS)
	$(PY) train/train.py $(TRAIN_ARGS) $(TRAIN_FULL_ARGS) --threads $(TRAIN_THREADS) \
	    --log $(if $(DATASET),$(TRAIN_OUT),train/out)/train.log

train-fast:
	@PY=$(PY) sh tools/need.sh "make train-fast" $(TRAIN_NEEDS)
	$(PY) train/train.py --fast $(TRAIN_ARGS) --out $(TRAIN_FAST_OUT) --threads 1

.DEFAULT_GOAL := $(_train_mk_goal)
