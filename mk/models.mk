# Models built from code (not committed; see models/ and converter/mnv2ee.py).
#   make models         every model below
#   make test-export    the eex-export round-trip tests (tests/export/test_export.py) and
#                       early exits on torchvision backbones (tests/export/test_export_zoo.py)
#
# This file is included before the Makefile's `all` rule: keep `all` the default goal.
_models_mk_goal := $(.DEFAULT_GOAL)

EEX_EXPORT_DEPS := converter/eex_export.py converter/eex-export converter/onnx2eex.py \
                   converter/eexfile.py
MODEL_FILES := models/mobilenetv2-ee-224.eex

.PHONY: models test-export

models: $(MODEL_FILES)

# MobileNetV2 at 1x3x224x224, random weights (seed 0), exits at 25/50/75% of the
# backbone FLOPs, expert sets pristine/blur/noise, CollabAR detector on 1x64x64.
models/mobilenetv2-ee-224.eex: converter/mnv2ee.py $(EEX_EXPORT_DEPS)
	@mkdir -p $(dir $@)
	$(PY) converter/mnv2ee.py -o $@.tmp && mv $@.tmp $@

# The same model with float32 side-head weights: the other half of `make bench-exits`.
models/mobilenetv2-ee-224-f32heads.eex: converter/mnv2ee.py $(EEX_EXPORT_DEPS)
	@mkdir -p $(dir $@)
	$(PY) converter/mnv2ee.py --f32-heads -o $@.tmp && mv $@.tmp $@

test-export: $(BUILD)/eex
	BUILD=$(BUILD) $(PY) tests/export/test_export.py
	BUILD=$(BUILD) $(PY) tests/export/test_export_zoo.py

.DEFAULT_GOAL := $(_models_mk_goal)
