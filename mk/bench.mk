# Benchmarks. `make bench`: eex against ONNX Runtime and PyTorch on
# torchvision models (bench/peers/run.py) -> bench/results/peers.json.
# `make bench-kernels`: each MobileNetV2 conv shape through the fast kernels,
# beside OpenBLAS sgemm 1024^3 in the same run -> bench/results/kernels.json.
# `make bench-exits`: `eex bench --exits` on MobileNetV2-EE-224, side heads stored
# as float16 against float32, alternating -> bench/results/exits.json.
# `make bench-eval`: `eex eval` with ten thresholds against one, alternating
# -> bench/results/eval_thresholds.json.
BENCH_MODELS ?= mobilenet_v2,resnet18,mobilenet_v3_small,resnet50,efficientnet_b0
BENCH_THREADS ?= 1,2
BENCH_ROUNDS ?= 5
ORT_NODE := bench/peers/node_modules/onnxruntime-node/package.json

.PHONY: bench bench-kernels

# onnxruntime-node from npm; --ignore-scripts: its CPU library ships in the
# package, and the install script would only try to download GPU builds.
$(ORT_NODE): bench/peers/package.json
	cd bench/peers && npm install --ignore-scripts --no-package-lock --no-audit --no-fund
	@touch $@

bench: $(BUILD)/eex $(ORT_NODE)
	$(PY) tests/parity/make_models.py --out $(PARITY_DIR) --models $(BENCH_MODELS)
	$(PY) bench/peers/run.py --eex $(BUILD)/eex --models-dir $(PARITY_DIR) --models $(BENCH_MODELS) \
	    --threads $(BENCH_THREADS) --rounds $(BENCH_ROUNDS) --winograd --out bench/results/peers.json

$(BUILD)/bench_kernels: bench/kernels/bench_kernels.c $(BUILD)/libeex.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libeex.a $(LDLIBS)

bench-kernels: $(BUILD)/bench_kernels
	$(BUILD)/bench_kernels --out bench/results/kernels$(if $(filter none,$(BLAS)),-noblas).json

# The BLAS=none build against the OpenBLAS build on MobileNetV2, interleaved.
.PHONY: bench-blas
bench-blas: $(BUILD)/eex
	$(MAKE) BLAS=none build-noblas/eex
	$(PY) tests/parity/make_models.py --out $(PARITY_DIR) --models mobilenet_v2
	$(PY) bench/blas_compare.py --openblas $(BUILD)/eex --none build-noblas/eex \
	    --model $(PARITY_DIR)/mobilenet_v2.eex --out bench/results/blas.json

.PHONY: bench-exits
bench-exits: $(BUILD)/eex models/mobilenetv2-ee-224.eex models/mobilenetv2-ee-224-f32heads.eex
	$(PY) bench/exits/run.py --eex $(BUILD)/eex --model models/mobilenetv2-ee-224.eex \
	    --f32-model models/mobilenetv2-ee-224-f32heads.eex --out bench/results/exits.json

.PHONY: bench-eval
bench-eval: $(BUILD)/eex
	$(PY) bench/eval/thresholds.py --eex $(BUILD)/eex --model models/fmnist-ee.eex
