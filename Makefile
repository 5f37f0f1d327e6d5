# dimd - Deep InfoMax training service.
#
#   make run     install missing Debian packages, build, start dimd on the default job
#   make test    install missing packages, build, run every test suite (plain, then ASan+UBSan,
#                then a bounded libFuzzer run and the ThreadSanitizer suites)
#   make fuzz    the libFuzzer targets of tests/fuzz/ (FUZZ_RUNS=N runs longer)
#   make bench   performance benchmarks (figures in build/bench.json)
#   make bench-peers  dimd side by side with PyTorch (installs python3-torch; not in test)
#
# Other targets: all, check-core, check-deps, print-layers, test-unit, test-san, test-fuzz,
# fuzz-replay, test-tsan, format, clean.
# SAN=1 builds into build-san/ with AddressSanitizer + UndefinedBehaviorSanitizer.

CC      ?= cc
# Compile on every core; the tests themselves run one program at a time (tests/run.sh).
MAKEFLAGS += --no-print-directory -j$(shell nproc 2>/dev/null || echo 2)
SAN     ?= 0
PKGS    := openblas libpng zlib libjpeg
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
SRV_PKGS   := jansson libmicrohttpd sqlite3 libuv
SRV_CFLAGS := $(shell pkg-config --cflags $(SRV_PKGS) 2>/dev/null)
SRV_LIBS   := $(shell pkg-config --libs $(SRV_PKGS) 2>/dev/null)
# Open MPI (Debian's libopenmpi-dev) for server/dist/ only; every binary with the
# server's objects links it. -isystem: its headers are not ours to warn about.
MPI_CFLAGS := $(patsubst -I%,-isystem %,$(shell pkg-config --cflags ompi-c 2>/dev/null))
SRV_LIBS   += $(shell pkg-config --libs ompi-c 2>/dev/null)

WARN    := -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes \
           -Wvla -Werror
CFLAGS  ?= -O3 -g
CFLAGS  += -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(WARN) -fno-math-errno \
           -fno-trapping-math
LDLIBS  := -lm -lpthread

ifeq ($(SAN),1)
BUILD   ?= build-san
CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
else
BUILD   ?= build
endif

# FUZZ=1 (build-fuzz/, clang, libFuzzer) and TSAN=1 (build-tsan/): the fuzzing
# and ThreadSanitizer blocks at the end of this file.
ifeq ($(FUZZ),1)
BUILD   := build-fuzz
CC      := clang-14
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
CFLAGS  += -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $(FUZZ_SAN)
LDFLAGS += $(FUZZ_SAN)
endif
ifeq ($(TSAN),1)
BUILD   := build-tsan
CFLAGS  += -O2 -fsanitize=thread -fno-omit-frame-pointer
LDFLAGS += -fsanitize=thread
endif

CORE_SRC := $(sort $(wildcard core/*/*.c))
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
CORE_LIB := $(BUILD)/libdimcore.a

# The layers above core/, bottom to top, and what each may include and call
# besides itself ("core" is every folder of core/). Each layer compiles against
# $(BUILD)/inc/LAYER/, a folder of links to exactly these folders, so a
# wrong-way include does not compile; `make check-deps` also checks every
# include line and every symbol each layer's objects use.
LAYERS            := api util dist store service http handlers cmd
LAYER_DEPS_api      := core
LAYER_DEPS_util     := base
LAYER_DEPS_dist     := base
LAYER_DEPS_store    := api util base
LAYER_DEPS_service  := api util store core
LAYER_DEPS_http     := api util base
LAYER_DEPS_handlers := api util store service http core
LAYER_DEPS_cmd      := api util dist store service http handlers core
CORE_DIRS  := $(notdir $(wildcard core/*))
layer_dir   = $(if $(filter api,$(1)),api,$(if $(filter $(CORE_DIRS),$(1)),core/$(1),server/$(1)))
layer_deps  = $(1) $(patsubst core,$(CORE_DIRS),$(LAYER_DEPS_$(1)))
INC_STAMP  := $(BUILD)/inc/.stamp

API_SRC  := $(sort $(wildcard api/*.c))
SRV_SRC  := $(sort $(wildcard server/*/*.c))
APP_SRC  := $(API_SRC) $(SRV_SRC)
# The dashboard: web/'s own files and uPlot from the npm registry (web/package.json,
# pinned by web/package-lock.json, fetched by `npm ci` into web/node_modules).
NPM_STAMP := web/node_modules/.package-lock.json
UPLOT     := web/node_modules/uplot/dist/uPlot.iife.min.js web/node_modules/uplot/dist/uPlot.min.css
WEB_SRC   := $(sort $(wildcard web/*.html web/*.css web/*.js web/*.svg web/*.png)) $(UPLOT)
# Files compiled into the binary: migrations, the API document, the dashboard
# (server/util/assets.h).
ASSET_SRC := $(sort $(wildcard migrations/*.sql)) openapi.yaml $(WEB_SRC)
ASSET_OBJ := $(BUILD)/gen/assets.o
APP_OBJ  := $(APP_SRC:%.c=$(BUILD)/%.o) $(ASSET_OBJ)
DIMD     := $(BUILD)/dimd

TEST_SUPPORT_SRC := $(sort $(wildcard tests/support/*.c))
TEST_SUPPORT_OBJ := $(TEST_SUPPORT_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(sort $(wildcard tests/core/test_*.c))
SERVER_TEST_SRC := $(sort $(wildcard tests/api/test_*.c tests/server/*/test_*.c))
TEST_BIN := $(TEST_SRC:tests/core/%.c=$(BUILD)/tests/%) \
            $(SERVER_TEST_SRC:tests/%.c=$(BUILD)/tests/%)
SERVER_LIB_OBJ := $(filter-out $(BUILD)/server/cmd/main.o,$(APP_OBJ))
# test_check_deps.sh checks a script over object files: test-unit runs it, test-san
# (whose objects would tell it nothing new) does not.
CHECK_DEPS_TEST := tests/scripts/test_check_deps.sh
# test_dist.sh runs 2 ranks under mpirun against 1 process: test-unit only (LeakSanitizer
# would report what Open MPI still holds at exit; tests/core/test_dist.c runs the maths
# sanitized, ranks as threads).
DIST_TEST := tests/cli/test_dist.sh
CLI_TESTS := $(CHECK_DEPS_TEST) tests/cli/test_cli.sh $(DIST_TEST) tests/e2e/test_api.sh
MAKE_PNG  := $(BUILD)/tests/cli/make_png
CKPT_DIFF := $(BUILD)/tests/cli/ckpt_diff
BENCH_SRC := $(sort $(wildcard bench/*.c bench/peers/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
# Tests and benchmarks see every layer, as cmd does.
TOP_INC  := -I$(BUILD)/inc/cmd

.PHONY: all deps run test test-unit test-san test-browser bench bench-peers results recipe findings sweep-compare check-core check-deps \
        print-layers format clean
all: $(DIMD) $(TEST_BIN) $(BENCH_BIN)

deps:
	@scripts/install-deps.sh

$(BUILD)/core/%.o: core/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Icore $(PKG_CFLAGS) -MMD -MP -c $< -o $@

# One folder of links per layer: $(BUILD)/inc/LAYER/DEP -> the folder DEP.
$(INC_STAMP): Makefile
	@rm -rf $(BUILD)/inc && mkdir -p $(BUILD)/inc
	@$(foreach l,$(LAYERS),mkdir -p $(BUILD)/inc/$(l) && \
	    $(foreach d,$(call layer_deps,$(l)),ln -s $(CURDIR)/$(call layer_dir,$(d)) \
	        $(BUILD)/inc/$(l)/$(d) &&) true;)
	@touch $@

# api/ and each server/LAYER/ compile against their layer's links only.
$(BUILD)/api/%.o: api/%.c | $(INC_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(BUILD)/inc/api $(PKG_CFLAGS) $(SRV_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/server/dist/%.o: SRV_CFLAGS += $(MPI_CFLAGS)
$(BUILD)/server/%.o: server/%.c | $(INC_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(BUILD)/inc/$(firstword $(subst /, ,$*)) $(PKG_CFLAGS) $(SRV_CFLAGS) \
	    -MMD -MP -c $< -o $@

$(BUILD)/tests/support/%.o: tests/support/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Icore $(PKG_CFLAGS) -MMD -MP -c $< -o $@

# npm writes its lockfile copy last, so the stamp is newer than every fetched file.
$(NPM_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
$(UPLOT): $(NPM_STAMP)

$(BUILD)/gen/assets.c: $(ASSET_SRC) scripts/embed.sh
	@mkdir -p $(dir $@)
	scripts/embed.sh $@ $(ASSET_SRC)

$(ASSET_OBJ): $(BUILD)/gen/assets.c | $(INC_STAMP)
	$(CC) $(CFLAGS) -I$(BUILD)/inc/util -c $< -o $@

$(CORE_LIB): $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(DIMD): $(APP_OBJ) $(CORE_LIB)
	$(CC) $(LDFLAGS) -o $@ $(APP_OBJ) $(CORE_LIB) $(SRV_LIBS) $(PKG_LIBS) $(LDLIBS)

# test_noalloc counts every allocation core makes, through the linker's --wrap.
$(BUILD)/tests/test_noalloc: TEST_LDFLAGS := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc

$(BUILD)/tests/%: tests/core/%.c $(TEST_SUPPORT_OBJ) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Icore -Itests/support $(PKG_CFLAGS) -MMD -MP -o $@ $< $(TEST_SUPPORT_OBJ) \
	    $(CORE_LIB) $(LDFLAGS) $(TEST_LDFLAGS) $(PKG_LIBS) -lcmocka $(LDLIBS)

# Tests of api/ and server/ link their objects (all but main) as well.
SERVER_TEST_LINK = $(CC) $(CFLAGS) $(TOP_INC) -Itests/support $(PKG_CFLAGS) $(SRV_CFLAGS) -MMD -MP \
    -o $@ $< $(TEST_SUPPORT_OBJ) $(SERVER_LIB_OBJ) $(CORE_LIB) $(LDFLAGS) $(SRV_LIBS) \
    $(PKG_LIBS) -lcmocka $(LDLIBS)
$(BUILD)/tests/api/%: tests/api/%.c $(TEST_SUPPORT_OBJ) $(SERVER_LIB_OBJ) $(CORE_LIB) | $(INC_STAMP)
	@mkdir -p $(dir $@)
	$(SERVER_TEST_LINK)
$(BUILD)/tests/server/%: tests/server/%.c $(TEST_SUPPORT_OBJ) $(SERVER_LIB_OBJ) $(CORE_LIB) \
                         | $(INC_STAMP)
	@mkdir -p $(dir $@)
	$(SERVER_TEST_LINK)

# Benchmarks measure the product's configuration: core plus the server's pieces.
$(BUILD)/bench/%: bench/%.c $(SERVER_LIB_OBJ) $(CORE_LIB) | $(INC_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TOP_INC) $(PKG_CFLAGS) $(SRV_CFLAGS) -MMD -MP -o $@ $< $(SERVER_LIB_OBJ) \
	    $(CORE_LIB) $(LDFLAGS) $(SRV_LIBS) $(PKG_LIBS) $(LDLIBS)

# PNG writer for the CLI tests (tests/cli/test_cli.sh finds it next to dimd).
$(MAKE_PNG): tests/cli/make_png.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $< $(LDFLAGS) $(PKG_LIBS) $(LDLIBS)

# Parameter distances of two checkpoints for tests/cli/test_dist.sh (core's reader).
$(CKPT_DIFF): tests/cli/ckpt_diff.c $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Icore $(PKG_CFLAGS) -o $@ $< $(CORE_LIB) $(LDFLAGS) $(PKG_LIBS) $(LDLIBS)

# core/ must stay free of HTTP, JSON, SQLite and libuv: no such include in its
# sources and no such undefined symbol in its archive.
check-core: $(CORE_LIB)
	@! grep -rnE '#include *[<"](microhttpd|jansson|sqlite3|uv)(\.h)?[>"]' core/ || \
	    { echo "check-core: core/ includes a service library"; exit 1; }
	@! nm -u $(CORE_LIB) | grep -E ' (MHD_|json_|sqlite3_|uv_)' || \
	    { echo "check-core: libdimcore.a references a service library"; exit 1; }
	@echo "check-core: core/ depends on libc, libm, BLAS, libpng, libjpeg and zlib only"

# Layers point one way (the table at the top): includes and symbols, plus core's own check.
check-deps: check-core $(APP_OBJ)
	@scripts/check-deps.sh $(BUILD) $(foreach l,$(LAYERS),"$(l):$(LAYER_DEPS_$(l))")

# The layer table, one "LAYER:DEP ..." line per layer (tests/scripts/test_check_deps.sh).
print-layers:
	@$(foreach l,$(LAYERS),echo "$(l):$(LAYER_DEPS_$(l))";)

run: deps
	$(MAKE) $(DIMD)
	scripts/run-default.sh $(DIMD)

test: deps
	$(MAKE) test-unit
	$(MAKE) test-browser
	$(MAKE) test-san
	$(MAKE) test-fuzz
	$(MAKE) test-tsan

# The dashboard in Debian's headless Chromium, driven by playwright-core, against
# the real daemon; screenshots and page weight go to build/browser/.
test-browser: $(DIMD) $(NPM_STAMP)
	node tests/browser/run.mjs $(DIMD) $(BUILD)/browser

# Unit tests (cmocka) and the CLI tests, against $(BUILD)/dimd.
test-unit: all check-deps $(MAKE_PNG) $(CKPT_DIFF)
	@tests/run.sh $(BUILD) $(TEST_BIN) -- $(CLI_TESTS)

# The same suites built with ASan+UBSan (build-san/), but test_check_deps.sh. Six API
# modules run in test-unit only, because under the sanitizers their training adds minutes:
# test_faults (kill -9, SIGTERM, restart limit), test_storage (a full disk on a tmpfs),
# test_jobs and test_events (long jobs, pause/resume, live streams), test_backup (a job
# trained twice around a restored backup), test_sweeps (a few dozen trials). The C paths
# they drive run sanitized in tests/server/store/ (test_backup, test_check and a put on a
# full disk included), test_runner and test_cli.sh (dimd sweep: the sweep service's passes,
# rung pauses and decisions), and every route runs sanitized in test_auth.
test-san:
	$(MAKE) SAN=1 all build-san/tests/cli/make_png
	@DIMD_API_TESTS_EXCLUDE=test_faults,test_storage,test_jobs,test_events,test_backup,test_sweeps,test_ranks tests/run.sh build-san \
	    $(patsubst build/%,build-san/%,$(TEST_BIN)) -- $(filter-out $(CHECK_DEPS_TEST) $(DIST_TEST),$(CLI_TESTS))

bench: deps
	$(MAKE) $(BENCH_BIN) $(DIMD)
	@mkdir -p build
	$(BUILD)/bench/bench_train --json build/bench.json
	$(BUILD)/bench/bench_store --json build/bench-store.json
	/usr/bin/python3 bench/bench_serve.py $(DIMD) --json build/bench-serve.json
	/usr/bin/python3 bench/bench_backup.py $(DIMD) --json build/bench-backup.json
	/usr/bin/python3 bench/bench_dist.py $(DIMD) --json build/bench-dist.json
	$(BUILD)/bench/bench_encode $(DIMD) --clients 64 --rounds 5 --json build/bench-encode.json
	$(BUILD)/bench/bench_encode $(DIMD) --clients 64 --rounds 5 --threads 2 --compute_threads 1 \
	    --json build/bench-encode-2x1.json
	$(BUILD)/bench/bench_encode $(DIMD) --clients 64 --rounds 3 --streams 0 \
	    --json build/bench-watch-0.json
	$(BUILD)/bench/bench_encode $(DIMD) --clients 64 --rounds 3 --streams 1000 \
	    --json build/bench-watch-1000.json
	$(BUILD)/bench/bench_encode $(DIMD) --clients 64 --rounds 3 --streams 4000 \
	    --json build/bench-watch-4000.json

# dimd side by side with PyTorch (Debian's python3-torch, installed here and used by
# nothing else): training steps, batched forward passes and served encodes, interleaved
# in rounds; ratios in build/bench-peers.json (bench/peers/README.md).
bench-peers: deps
	@scripts/install-deps.sh peers
	$(MAKE) $(BUILD)/bench/peers/dimd_side $(BUILD)/bench/bench_encode $(DIMD)
	@mkdir -p build
	/usr/bin/python3 bench/peers/bench_peers.py --build $(BUILD) --json build/bench-peers.json

# docs/results.md: time-to-accuracy curves of DIM(L) and DIM(G) on Fashion-MNIST (30
# minutes of training each) and CIFAR-10 (60 each), probed at five points (about five
# hours in all). CIFAR10 is any CIFAR-10 image folder with train/ (and test/, if it has
# one); by default the training images this project is given, unpacked into build/data.
# REUSE=1 finishes an interrupted run: what it finished is read back from build/results.
CIFAR10 ?= $(BUILD)/data/cifar10
CIFAR10_TGZ ?= ../shared/data/cifar10-train-jpeg.tar.gz
RESULTS_FLAGS ?=
results: deps
	@scripts/install-deps.sh results
	$(MAKE) $(DIMD)
	@if [ ! -d $(CIFAR10)/train ]; then mkdir -p $(CIFAR10) && tar -xzf $(CIFAR10_TGZ) -C $(CIFAR10); fi
	/usr/bin/python3 scripts/results.py $(DIMD) --cifar $(CIFAR10) $(if $(REUSE),--reuse) $(RESULTS_FLAGS)

# docs/recipe.md: the experiments behind the default recipe (one epoch of DIM(L) on
# Fashion-MNIST per setting, each probed alike; about ten minutes per setting).
recipe: deps
	$(MAKE) $(DIMD)
	/usr/bin/python3 scripts/recipe.py $(DIMD)

# docs/findings.md: DIM(L) JSD/NCE/DV and DIM(G) trained alike and measured with every
# measure of `dimd measure`, then the paper's findings checked (about an hour).
findings: deps
	$(MAKE) $(DIMD)
	/usr/bin/python3 scripts/findings.py $(DIMD)

# docs/sweeps.md: ASHA against the exhaustive grid on 16 configurations of DIM(L) on
# Fashion-MNIST (8 learning rates, clearly bad ones included, x 2 prior weights), one
# epoch per trial, ranked by the converged linear probe on a validation split (hours
# on 2 cores). A tiny run to see it work:
#   make sweep-compare SWEEP_COMPARE_FLAGS="--steps 30 --validation-images 300 \
#        --probe-images 300 --out build/sweep-compare.md"
SWEEP_COMPARE_FLAGS ?=
sweep-compare: deps
	$(MAKE) $(DIMD)
	/usr/bin/python3 scripts/sweep_compare.py $(DIMD) $(SWEEP_COMPARE_FLAGS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-san build-fuzz build-tsan

# ---- fuzzing (tests/fuzz/) ---------------------------------------------------------
# libFuzzer targets, one per parser of untrusted bytes, built by clang-14 with ASan
# and UBSan into build-fuzz/fuzz/ (objects: FUZZ=1). `make fuzz` replays the
# committed corpus (tests/fuzz/corpus/TARGET/) and then fuzzes each target for a
# fixed number of executions (FUZZ_RUNS=N for every target; default: each
# target's own count in tests/fuzz/run.sh, about 3 minutes in all), printing
# executions, exec/s, coverage and corpus size per target. New inputs go to
# build-fuzz/corpus/, crashes to build-fuzz/crashes/. FUZZ_TARGETS="a b" picks targets;
# FUZZ_SEED=N is libFuzzer's -seed (default 1; 0: a random one).
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/fuzz/%)
FUZZ_RUNS ?=
FUZZ_SEED ?= 1
FUZZ_TARGETS ?=
.PHONY: fuzz fuzz-build fuzz-replay test-fuzz
$(BUILD)/fuzz/%: tests/fuzz/%.c $(TEST_SUPPORT_OBJ) $(SERVER_LIB_OBJ) $(CORE_LIB) | $(INC_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer $(TOP_INC) -Itests/support $(PKG_CFLAGS) $(SRV_CFLAGS) \
	    -MMD -MP -o $@ $< $(TEST_SUPPORT_OBJ) $(SERVER_LIB_OBJ) $(CORE_LIB) $(LDFLAGS) \
	    -fsanitize=fuzzer $(SRV_LIBS) $(PKG_LIBS) $(LDLIBS)
# make_corpus writes the binary seeds (tests/fuzz/make_corpus.c says how to run it).
$(BUILD)/fuzz/make_corpus: tests/fuzz/make_corpus.c $(TEST_SUPPORT_OBJ) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Icore -Itests/support $(PKG_CFLAGS) -MMD -MP -o $@ $< $(TEST_SUPPORT_OBJ) \
	    $(CORE_LIB) $(LDFLAGS) $(PKG_LIBS) $(LDLIBS)
fuzz-build: deps
	$(MAKE) FUZZ=1 $(FUZZ_BIN) build-fuzz/fuzz/make_corpus
# Every committed corpus input once (regression inputs: each crash found stays here).
fuzz-replay: fuzz-build
	@tests/fuzz/run.sh --replay build-fuzz $(FUZZ_TARGETS)
fuzz: fuzz-replay
	@FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_SEED=$(FUZZ_SEED) tests/fuzz/run.sh build-fuzz $(FUZZ_TARGETS)
test-fuzz: fuzz
-include $(FUZZ_BIN:=.d)

# ---- ThreadSanitizer -----------------------------------------------------------------
# TSAN=1 builds into build-tsan/ with gcc's -fsanitize=thread. test-tsan runs the
# unit tests of the threaded server parts (the store, the runner, the encoder,
# the thread pool) and the e2e module test_encode (concurrent encode clients
# while a job trains) against build-tsan/dimd. Reports go to files
# (build-tsan/tsan-logs/, which the daemon's children inherit through
# TSAN_OPTIONS); any report fails the step. Deadlines of test_runner and the
# e2e tests are 5 times longer (DIMD_TEST_TIMEOUT_SCALE): TSan slows training
# about 15-fold. tests/tsan.supp holds the
# suppressions, third-party code only, each explained (none is needed today).
# OPENBLAS_NUM_THREADS=1: OpenBLAS's own threads, which dimd does not use,
# synchronise with spin loops TSan cannot see (tests/tsan.supp says more).
TSAN_TEST_SRC := $(sort $(wildcard tests/server/store/test_*.c tests/server/service/test_runner*.c \
                   tests/server/service/test_inference*.c tests/server/util/test_threadpool*.c))
TSAN_BIN      := $(TSAN_TEST_SRC:tests/%.c=build-tsan/tests/%)
TSAN_E2E      := test_encode
TSAN_ENV       = OPENBLAS_NUM_THREADS=1 DIMD_TEST_TIMEOUT_SCALE=5 \
    TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp log_path=$(CURDIR)/build-tsan/tsan-logs/tsan \
    halt_on_error=0 second_deadlock_stack=1 history_size=4"
.PHONY: test-tsan
test-tsan: deps
	$(MAKE) TSAN=1 $(TSAN_BIN) build-tsan/dimd
	@rm -rf build-tsan/tsan-logs && mkdir -p build-tsan/tsan-logs
	@t0=$$(date +%s); rc=0; log=build-tsan/tsan-logs/summaries; \
	$(TSAN_ENV) tests/run.sh build-tsan $(TSAN_BIN) >$$log.unit 2>&1 || rc=1; cat $$log.unit; \
	$(TSAN_ENV) sh tests/e2e/test_api.sh build-tsan/dimd $(TSAN_E2E) >$$log.e2e 2>&1 || rc=1; \
	cat $$log.e2e; \
	reports=0; \
	if ls build-tsan/tsan-logs/tsan.* >/dev/null 2>&1; then \
	    echo "!! ThreadSanitizer reports (build-tsan/tsan-logs/):"; \
	    cat build-tsan/tsan-logs/tsan.*; rc=1; reports=1; \
	fi; \
	echo "test-tsan: $$([ $$rc -eq 0 ] && echo clean || echo FAILED) in $$(($$(date +%s) - t0)) s"; \
	for f in $$log.unit $$log.e2e; do grep -E '^[0-9]+ passed, [0-9]+ failed$$' $$f | tail -n 1; done | \
	    awk -v r=$$reports -v rc=$$rc '{ p += $$1; f += $$3 } \
	        END { f += r; if (rc != 0 && f == 0) f = 1; print p " passed, " f " failed" }'; \
	exit $$rc

-include $(CORE_OBJ:.o=.d) $(APP_OBJ:.o=.d) $(TEST_BIN:=.d) $(BENCH_BIN:=.d) $(TEST_SUPPORT_OBJ:.o=.d)
