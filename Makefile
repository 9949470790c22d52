# goproxyd: a caching Go module proxy.
#   make            build ./goproxyd
#   make check      unit + integration + real-go tests (add SANITIZE=1 for ASan/UBSan)
#   make run        build and start the daemon with the defaults
#   make soak       a few minutes of load against a flaky fake upstream
#   make bench      goproxyd measured against nginx (docs/benchmarks.md)
#   make fuzz       libFuzzer targets in build-fuzz/, FUZZ_SECONDS each (default 60)
#   make install    PREFIX=/usr/local DESTDIR=
#   make deb        a Debian package in build/deb/

PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  = $(PREFIX)/sbin
MANDIR  = $(PREFIX)/share/man/man8
UNITDIR ?= $(PREFIX)/lib/systemd/system

PKGS    = libmicrohttpd libcurl libcjson libzip libsystemd libcrypt
CC      ?= cc
CFLAGS  ?= -O2 -g
# libarchive: headers only; src/archivelib.c loads it at run time (why: there).
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude \
           $(shell pkg-config --cflags $(PKGS) libarchive)
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lcrypto -lpthread -ldl

# SANITIZE=1 builds everything into build-san/ with ASan + UBSan.
ifeq ($(SANITIZE),1)
BUILD   = build-san
CFLAGS  += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else
BUILD   = build
endif

SRCS    = $(wildcard src/*.c)
OBJS    = $(SRCS:src/%.c=$(BUILD)/%.o)
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/%)
BIN     = $(BUILD)/goproxyd

# ./goproxyd is the plain build only: a SANITIZE=1 build stays in build-san/,
# so that it never replaces the binary that `make run` and `make bench` use.
ifeq ($(SANITIZE),1)
all: $(BIN)
else
all: goproxyd
endif

# Copied by rename, so a running ./goproxyd does not make the copy fail.
goproxyd: $(BIN)
	cp $(BIN) $@.tmp && mv -f $@.tmp $@

$(BIN): $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: src/%.c $(wildcard include/*.h) | $(BUILD)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# Each unit test links only the src/ files it names in test_<name>_DEPS
# (the file itself and what it calls, down the one-way order
# server -> fetch -> store -> verify -> ...), so it tests those files and
# not the whole daemon.  A collaborator a test replaces is not linked:
# the test file defines its functions as stubs (test_store: verify, gc).
test_config_DEPS  = config proxylist glob units addr route modpath tlog note text unicode
test_modpath_DEPS = modpath text unicode
test_route_DEPS   = route modpath tlog note text unicode
test_sumdb_DEPS   = dirhash note tlog text
test_fetchq_DEPS  = fetchq
test_cache_DEPS   = cache catalog log modpath route tlog note text unicode
test_flight_DEPS  = flight cache catalog log modpath route tlog note text unicode
test_store_DEPS   = store s3 httpget metrics workq cache catalog flight validate gomod log modpath route tlog note text unicode
test_gomod_DEPS   = gomod modpath text unicode
test_validate_DEPS = validate gomod modpath text unicode
test_range_DEPS   = range
test_clients_DEPS = clients log text
test_direct_DEPS  = direct cache catalog workq log metrics validate gomod config proxylist glob units addr \
                    route modpath tlog note text unicode
test_gosum_DEPS   = gosum bundle modpath text unicode
test_catalog_DEPS = catalog log modpath text unicode
test_frontpage_DEPS = frontpage modpath text unicode

.SECONDEXPANSION:
$(BUILD)/test_%: tests/unit/test_%.c $$(addprefix $(BUILD)/,$$(addsuffix .o,$$(test_$$*_DEPS))) \
                 $(wildcard include/*.h) | $(BUILD)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(filter %.o,$^) $(LDLIBS) -lcmocka

$(BUILD):
	mkdir -p $@

# deps/run/check first install missing Debian packages (as root), or print
# the apt-get line that would.
deps:
	@sh tests/deps.sh build

check:
	@sh tests/deps.sh test
	@$(MAKE) --no-print-directory $(BIN) $(UNIT_BINS)
	@sh tests/check.sh $(BUILD)

run:
	@sh tests/deps.sh build
	@$(MAKE) --no-print-directory goproxyd
	./goproxyd -listen :8080 -cacheDir ./cache

# deb: build the Debian package in a temporary copy of the tree (the tree
# gets no build products) and put it in build/deb/.
deb:
	@command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null || \
		{ echo "make deb needs: apt-get install -y build-essential dpkg-dev debhelper" >&2; exit 1; }
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	mkdir "$$tmp/src"; \
	tar -cf - --exclude=./.git --exclude=./build --exclude=./build-san --exclude=./build-fuzz \
		--exclude=./goproxyd --exclude=./goproxyd.tmp --exclude=./cache --exclude=./tests/tmp . | \
		tar -xf - -C "$$tmp/src"; \
	(cd "$$tmp/src" && DEB_BUILD_OPTIONS="nocheck $$DEB_BUILD_OPTIONS" dpkg-buildpackage -us -uc -b); \
	rm -rf build/deb; mkdir -p build/deb; mv -f "$$tmp"/*.deb build/deb/; ls -l build/deb/

# Not part of make check: goproxyd against nginx on this machine; writes
# docs/benchmarks.md and docs/benchmarks.png (BENCH_QUICK=1 for a smoke run).
bench: goproxyd
	sh tests/bench/run.sh

# Not part of make check: libFuzzer targets (tests/fuzz/fuzz_<name>.c), built
# with clang under ASan + UBSan into build-fuzz/, each run for FUZZ_SECONDS
# on a copy of its committed corpus (tests/fuzz/corpus/<name>/).  Any crash,
# leak or sanitizer report fails the run; its input is left in build-fuzz/.
# FUZZ_TARGETS picks some (e.g. FUZZ_TARGETS="route range").
FUZZ          = build-fuzz
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_CFLAGS   = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude -g -O1 \
                -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=all $(shell pkg-config --cflags libzip libcjson)
FUZZ_LDLIBS   = $(shell pkg-config --libs libzip libcjson) -lcrypto
fuzz_route_DEPS = route modpath tlog note text unicode
fuzz_range_DEPS = range
fuzz_gomod_DEPS = gomod modpath text unicode
fuzz_zip_DEPS   = validate gomod modpath text unicode
fuzz_answers_DEPS = validate gomod modpath text unicode
fuzz_note_DEPS  = note text
fuzz_tlog_DEPS  = tlog note text

$(FUZZ)/%.o: src/%.c $(wildcard include/*.h) | $(FUZZ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ)/fuzz_%: tests/fuzz/fuzz_%.c $$(addprefix $(FUZZ)/,$$(addsuffix .o,$$(fuzz_$$*_DEPS))) \
                $(wildcard include/*.h) | $(FUZZ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(filter %.o,$^) $(FUZZ_LDLIBS)

$(FUZZ):
	mkdir -p $@

.PRECIOUS: $(FUZZ)/%.o

fuzz:
	@sh tests/deps.sh fuzz
	@$(MAKE) --no-print-directory $(addprefix $(FUZZ)/fuzz_,$(FUZZ_TARGETS))
	@sh tests/fuzz/run.sh $(FUZZ) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Not part of make check: minutes of flaky-upstream load (SOAK_SECONDS).
soak: goproxyd
	python3 tests/soak/soak.py

install: goproxyd
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR) $(DESTDIR)$(UNITDIR)
	install -m 0755 goproxyd $(DESTDIR)$(BINDIR)/goproxyd
	install -m 0644 docs/goproxyd.8 $(DESTDIR)$(MANDIR)/goproxyd.8
	sed 's|/usr/local/sbin/goproxyd|$(BINDIR)/goproxyd|' systemd/goproxyd.service \
		> $(DESTDIR)$(UNITDIR)/goproxyd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/goproxyd.service
	install -m 0644 systemd/goproxyd.socket $(DESTDIR)$(UNITDIR)/goproxyd.socket

clean:
	rm -rf build build-san build-fuzz goproxyd

.PHONY: all deps check run soak bench fuzz deb install clean
