# Magpie: one non-recursive Makefile.
#   make            library (static + shared) and the `magpie` CLI
#   make test       unit tests + CLI/shell tests, ends with "N passed, N failed"
#   make demo       generate the demo shop, import, train, evaluate, recommend
#   make bench      benchmarks in bench/
#   make SANITIZER=address,undefined test
#   make BUILD=dir  build into another directory (default: build)
#   make BLAS=none  plain-C kernels only (default BLAS=openblas: CBLAS from OpenBLAS for the dense kernels)
#   make install PREFIX=/usr/local DESTDIR=   library (static, shared with soname), headers, magpie.pc, the binary,
#                   man pages (generated from the built binary's --help); make uninstall removes the same files
#   make deb        a Debian package (packaging/deb.sh): BUILD/magpie_VERSION_ARCH.deb

BUILD     ?= build
CC        ?= cc
SANITIZER ?=
BLAS      ?= openblas
PKGS      := sqlite3 libpq libmicrohttpd icu-uc libcurl
ifeq ($(BLAS),openblas)
PKGS      += openblas
BLAS_DEF  := -DMP_HAVE_CBLAS=1
endif
# libmagpie itself does not use libmicrohttpd (the server is in the binary).
LIB_PKGS  := $(filter-out libmicrohttpd,$(PKGS))

# The version, from one place (the file VERSION): `magpie --version`, the soname (libmagpie.so.MAJOR), magpie.pc,
# the man pages and the Debian package read it.
VERSION   := $(shell cat VERSION)
SOVERSION := $(firstword $(subst ., ,$(VERSION)))
SONAME    := libmagpie.so.$(SOVERSION)

# Install locations (make install PREFIX=... DESTDIR=...).
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
MANDIR     ?= $(PREFIX)/share/man
DESTDIR    ?=

CFLAGS_BASE := -std=c11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wvla -Wno-unused-parameter -Wno-format-truncation \
               -D_GNU_SOURCE -fPIC -Iinclude -Isrc -pthread -fopenmp $(BLAS_DEF) $(shell pkg-config --cflags $(PKGS))
LDLIBS      := $(shell pkg-config --libs $(PKGS)) -lm -pthread -fopenmp
LIB_LDLIBS  := $(shell pkg-config --libs $(LIB_PKGS)) -lm -pthread -fopenmp
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
SHARED_REAL := $(BUILD)/libmagpie.so.$(VERSION)
SHARED := $(BUILD)/libmagpie.so
BIN    := $(BUILD)/magpie
TESTS  := $(BUILD)/magpie-tests

.PHONY: all test unit demo bench bench-bin clean format man install uninstall deb
all: $(STATIC) $(SHARED) $(BIN) $(BENCH_BIN)

# The shared library exports the public API only (MP_EXPORT in include/magpie/*.h): its objects hide the rest.
# (The static library, the binary and the tests link the same objects; hidden symbols link there as usual.)
$(LIB_OBJ): ALL_CFLAGS += -fvisibility=hidden
# `magpie --version`
$(BUILD)/src/cli/main.o: ALL_CFLAGS += -DMAGPIE_VERSION='"$(VERSION)"'
$(BUILD)/src/cli/main.o: VERSION

# The dashboard files and the OpenAPI description are embedded into the server with .incbin.
$(BUILD)/src/serve/assets.o: web/index.html web/dashboard.js web/dashboard.css docs/openapi.yaml

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

# libmagpie.so.MAJOR.MINOR.PATCH with soname libmagpie.so.MAJOR, and the two links to it.
$(SHARED_REAL): $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -Wl,-soname,$(SONAME) -Wl,-z,defs -o $@ $^ $(LIB_LDLIBS)

$(BUILD)/$(SONAME) $(SHARED): $(SHARED_REAL)
	ln -sf $(notdir $<) $@

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

# Man pages: magpie(1) and magpie-COMMAND(1), generated from the built binary's --help (packaging/gen-man.sh).
$(BUILD)/man/magpie.1: $(BIN) packaging/gen-man.sh
	sh packaging/gen-man.sh $(BIN) $(VERSION) $(BUILD)/man

man: $(BUILD)/man/magpie.1

# The dashboard and docs/openapi.yaml are embedded in the binary (src/serve/assets.c): nothing to install for them.
install: $(STATIC) $(SHARED_REAL) $(BUILD)/$(SONAME) $(SHARED) $(BIN) man
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(INCLUDEDIR)/magpie \
	    $(DESTDIR)$(MANDIR)/man1
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/magpie
	install -m 0644 $(STATIC) $(DESTDIR)$(LIBDIR)/libmagpie.a
	install -m 0644 $(SHARED_REAL) $(DESTDIR)$(LIBDIR)/libmagpie.so.$(VERSION)
	ln -sf libmagpie.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libmagpie.so
	install -m 0644 include/magpie/*.h $(DESTDIR)$(INCLUDEDIR)/magpie/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@LIBS_PRIVATE@|$(LIB_LDLIBS)|' packaging/magpie.pc.in \
	    > $(DESTDIR)$(PKGCONFIGDIR)/magpie.pc
	chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/magpie.pc
	install -m 0644 $(BUILD)/man/*.1 $(DESTDIR)$(MANDIR)/man1/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/magpie $(DESTDIR)$(LIBDIR)/libmagpie.a $(DESTDIR)$(LIBDIR)/libmagpie.so.$(VERSION) \
	    $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libmagpie.so $(DESTDIR)$(PKGCONFIGDIR)/magpie.pc \
	    $(patsubst include/%,$(DESTDIR)$(INCLUDEDIR)/%,$(wildcard include/magpie/*.h)) \
	    $(DESTDIR)$(MANDIR)/man1/magpie.1 $(DESTDIR)$(MANDIR)/man1/magpie-*.1
	-rmdir $(DESTDIR)$(INCLUDEDIR)/magpie

# A Debian package of the build (packaging/deb.sh): BUILD/magpie_VERSION_ARCH.deb. DEB_COMPRESS: dpkg-deb's -Z.
DEB_COMPRESS ?= xz
deb: $(STATIC) $(SHARED_REAL) $(BUILD)/$(SONAME) $(SHARED) $(BIN) man
	sh packaging/deb.sh "$(BUILD)" "$(VERSION)" "$(DEB_COMPRESS)" "$(MAKE)" BUILD="$(BUILD)" BLAS="$(BLAS)" \
	    SANITIZER="$(SANITIZER)"

format:
	clang-format -i $(LIB_SRC) $(CLI_SRC) $(TEST_SRC) include/magpie/*.h src/*/*.h

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
