# Magpie: one non-recursive Makefile.
#   make            library (static + shared) and the `magpie` CLI
#   make test       unit tests + CLI/shell tests, ends with "N passed, N failed"
#   make demo       generate the demo shop, import, train, evaluate, recommend
#   make bench      benchmarks in bench/
#   make SANITIZER=address,undefined test
#   make BUILD=dir  build into another directory (default: build)
#   make BLAS=none  plain-C kernels only (default BLAS=openblas: CBLAS from OpenBLAS for the dense kernels)

BUILD     ?= build
CC        ?= cc
SANITIZER ?=
BLAS      ?= openblas
PKGS      := sqlite3 libpq libmicrohttpd icu-uc libcurl
ifeq ($(BLAS),openblas)
PKGS      += openblas
BLAS_DEF  := -DMP_HAVE_CBLAS=1
endif

CFLAGS_BASE := -std=c11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wvla -Wno-unused-parameter -Wno-format-truncation \
               -D_GNU_SOURCE -fPIC -Iinclude -Isrc -pthread -fopenmp $(BLAS_DEF) $(shell pkg-config --cflags $(PKGS))
LDLIBS      := $(shell pkg-config --libs $(PKGS)) -lm -pthread -fopenmp
ifneq ($(SANITIZER),)
CFLAGS_BASE += -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS     += -fsanitize=$(SANITIZER)
endif
CFLAGS ?=
ALL_CFLAGS := $(CFLAGS_BASE) $(CFLAGS)

LIB_SRC  := $(sort $(wildcard src/core/*.c src/io/*.c src/nn/*.c src/data/*.c src/store/*.c src/ingest/*.c src/models/*.c src/eval/*.c \
                              src/ann/*.c src/live/*.c src/text/*.c src/bandit/*.c src/sim/*.c))
# The HTTP server (libmicrohttpd) is part of the `magpie` binary and the tests, not of libmagpie.
SERVE_SRC := $(sort $(wildcard src/serve/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c)) $(SERVE_SRC)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o) $(BUILD)/tests/runner.o $(SERVE_SRC:%.c=$(BUILD)/%.o)

STATIC := $(BUILD)/libmagpie.a
SHARED := $(BUILD)/libmagpie.so
BIN    := $(BUILD)/magpie
TESTS  := $(BUILD)/magpie-tests

.PHONY: all test unit demo bench bench-bin clean format
all: $(STATIC) $(SHARED) $(BIN) $(BENCH_BIN)

# The dashboard files are embedded into the server with .incbin.
$(BUILD)/src/serve/assets.o: web/index.html web/dashboard.js web/dashboard.css

# Benchmark programs: one bench/<name>.c each, linked with the library.
$(BUILD)/bench/%: bench/%.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(STATIC) $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SHARED): $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN): $(CLI_OBJ) $(STATIC)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(STATIC) $(LDLIBS)

# The test list is generated from the MP_TEST(name) definitions in tests/test_*.c.
$(BUILD)/tests/test_list.h: $(TEST_SRC)
	@mkdir -p $(dir $@)
	grep -h '^MP_TEST(' $(TEST_SRC) | sed 's/^MP_TEST(\([A-Za-z0-9_]*\)).*/MP_TEST_ENTRY(\1)/' > $@.tmp && mv $@.tmp $@

$(BUILD)/tests/runner.o: tests/runner.c $(BUILD)/tests/test_list.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -I$(BUILD)/tests -c $< -o $@

$(TESTS): $(TEST_OBJ) $(STATIC)
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(STATIC) $(LDLIBS)

unit: $(TESTS)
	$(TESTS)

test: all $(TESTS)
	BUILD=$(BUILD) ./tests/run.sh

demo: all
	BUILD=$(BUILD) ./examples/demo.sh

bench: all
	BUILD=$(BUILD) ./bench/ingest.sh
	BUILD=$(BUILD) ./bench/baselines.sh

format:
	clang-format -i $(LIB_SRC) $(CLI_SRC) $(TEST_SRC) include/magpie/*.h src/*/*.h

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
