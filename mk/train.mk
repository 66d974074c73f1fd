# Training side of "Reproduce the paper on Fashion-MNIST" (train/, converter/distort.py).
#   make train        the whole pipeline with Debian's python (torch, CPU): joint training,
#                     temperatures, blur/noise experts, detector, test evaluation, export.
#                     Writes models/fmnist-ee.eex and models/fmnist-ee.json; checkpoints
#                     and the log in train/out/ (about 30 min on 2 idle cores).
#   make train-fast   smoke run on a small subset (a minute or two); everything, the .eex
#                     and .json included, goes to train/out-fast/.
#   TRAIN_THREADS=N   torch threads for `make train` (default 2)
#
# Included before the Makefile's `all` rule: keep `all` the default goal.
_train_mk_goal := $(.DEFAULT_GOAL)

TRAIN_THREADS ?= 2

.PHONY: train train-fast

TRAIN_NEEDS = fmnist=$(FMNIST_DIR) py:torch=python3-torch py:onnx=python3-onnx py:numpy=python3-numpy

train:
	@PY=$(PY) sh tools/need.sh "make train" $(TRAIN_NEEDS)
	FMNIST_DIR=$(FMNIST_DIR) $(PY) train/train.py --threads $(TRAIN_THREADS) --log train/out/train.log

train-fast:
	@PY=$(PY) sh tools/need.sh "make train-fast" $(TRAIN_NEEDS)
	FMNIST_DIR=$(FMNIST_DIR) $(PY) train/train.py --fast --threads 1

.DEFAULT_GOAL := $(_train_mk_goal)
