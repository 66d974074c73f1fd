# The partition executor (offload/): wire protocol, edge client, cloud server.
#   make test-offload         unit tests (frames, codecs, the q4 codec and the
#                             split planner, SHA-256, HMAC, batched
#                             runs bit for bit, server and clients in threads)
#                             and the loopback tests (equality, cloud killed,
#                             hostile frames, 64 clients x 100 requests,
#                             batching, authentication, replays, the served
#                             file replaced, idle connections, log floods) and
#                             the input budgets (tests/offload/test_budgets.py:
#                             bombs, truncated images, FIFOs, huge arenas) and
#                             `eex eval --cut auto --wire auto` on an emulated path
#                             that changes mid-run (tests/offload/test_adapt.py; needs
#                             root for network namespaces, else it says so)
#   make test-offload-asan    the hostile-frames, replay, hot-swap, idle,
#                             log-flood and bad-reply tests and the input
#                             budgets against an address+undefined sanitizer
#                             build of `eex serve` and `eex`
#   make experiment-offload   docs/results/offload.md (emulated network paths)
#
# This file is included before the Makefile's `all` rule: keep `all` the default goal.
_offload_mk_goal := $(.DEFAULT_GOAL)

LIB_SRC += $(wildcard offload/*.c)

OFFLOAD_TOOLS := $(BUILD)/bench/offload/loadgen $(BUILD)/bench/offload/adapt $(BUILD)/bench/netem/delayrelay

.PHONY: test-offload test-offload-unit test-offload-threads test-offload-asan experiment-offload offload-tools

$(BUILD)/tests/test_offload: tests/offload/test_offload.c $(BUILD)/libeex.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libeex.a -lcriterion $(LDLIBS)

$(BUILD)/tests/test_plan: tests/offload/test_plan.c $(BUILD)/libeex.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libeex.a -lcriterion $(LDLIBS)

$(BUILD)/tests/test_threads: tests/offload/test_threads.c $(BUILD)/libeex.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libeex.a $(LDLIBS)

$(BUILD)/tests/test_batch: tests/offload/test_batch.c $(BUILD)/libeex.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libeex.a -lcriterion $(LDLIBS)

$(BUILD)/bench/offload/loadgen: bench/offload/loadgen.c $(BUILD)/libeex.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libeex.a $(LDLIBS)

$(BUILD)/bench/offload/adapt: bench/offload/adapt.c $(BUILD)/libeex.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libeex.a $(LDLIBS)

$(BUILD)/bench/netem/delayrelay: bench/netem/delayrelay.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

offload-tools: $(BUILD)/eex $(OFFLOAD_TOOLS)

# tests/ee/make_tiny.py writes build/ee/tiny.eex (skips when it is up to date)
test-offload-unit: $(BUILD)/tests/test_offload $(BUILD)/tests/test_batch $(BUILD)/tests/test_plan test-offload-threads
	$(BUILD)/tests/test_offload --jobs 2
	$(BUILD)/tests/test_plan --jobs 2
	EEX_TEST_MODEL=build/ee/tiny.eex $(BUILD)/tests/test_batch --jobs 2

# Server and clients in one process (no Criterion: it cannot start under TSan).
test-offload-threads: $(BUILD)/tests/test_threads
	@mkdir -p build/ee
	$(PY) tests/ee/make_tiny.py build/ee/tiny.eex
	EEX_TEST_MODEL=build/ee/tiny.eex $(BUILD)/tests/test_threads

test-offload: test-offload-unit offload-tools
	@mkdir -p build/ee
	$(PY) tests/ee/make_tiny.py build/ee/tiny.eex
	BUILD=$(BUILD) PY=$(PY) $(PY) tests/offload/test_offload.py
	BUILD=$(BUILD) $(PY) tests/offload/test_budgets.py
	BUILD=$(BUILD) $(PY) tests/offload/test_plan_cli.py
	BUILD=$(BUILD) $(PY) tests/offload/test_adapt.py

test-offload-asan:
	$(MAKE) SAN=asan build-asan/eex build-asan/bench/offload/loadgen build-asan/tests/test_offload
	build-asan/tests/test_offload --jobs 2
	@mkdir -p build/ee
	$(PY) tests/ee/make_tiny.py build/ee/tiny.eex
	BUILD=build-asan PY=$(PY) $(PY) tests/offload/test_offload.py hostile cli replay hotswap idle logflood badreply
	BUILD=build-asan $(PY) tests/offload/test_budgets.py

experiment-offload: offload-tools models/mobilenetv2-ee-224.eex
	@mkdir -p build/ee
	$(PY) tests/ee/make_tiny.py build/ee/tiny.eex
	BUILD=$(BUILD) PY=$(PY) sh bench/netem/experiment.sh

.DEFAULT_GOAL := $(_offload_mk_goal)
