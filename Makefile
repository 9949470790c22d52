# goproxyd: a caching Go module proxy.
#   make            build ./goproxyd
#   make check      unit + integration + real-go tests (add SANITIZE=1 for ASan/UBSan)
#   make run        build and start the daemon with the defaults
#   make soak       a few minutes of load against a flaky fake upstream
#   make bench      goproxyd measured against nginx (docs/benchmarks.md)
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
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude \
           $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lcrypto -lpthread

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

all: goproxyd

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
test_config_DEPS  = config proxylist glob units addr route modpath tlog note text
test_modpath_DEPS = modpath
test_route_DEPS   = route modpath tlog note text
test_sumdb_DEPS   = dirhash note tlog text
test_fetchq_DEPS  = fetchq
test_cache_DEPS   = cache log modpath route tlog note text
test_flight_DEPS  = flight cache log modpath route tlog note text
test_store_DEPS   = store s3 httpget metrics workq cache flight validate gomod log modpath route tlog note text
test_gomod_DEPS   = gomod modpath text
test_validate_DEPS = validate gomod modpath text
test_range_DEPS   = range

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
	tar -cf - --exclude=./.git --exclude=./build --exclude=./build-san \
		--exclude=./goproxyd --exclude=./goproxyd.tmp --exclude=./cache --exclude=./tests/tmp . | \
		tar -xf - -C "$$tmp/src"; \
	(cd "$$tmp/src" && DEB_BUILD_OPTIONS="nocheck $$DEB_BUILD_OPTIONS" dpkg-buildpackage -us -uc -b); \
	rm -rf build/deb; mkdir -p build/deb; mv -f "$$tmp"/*.deb build/deb/; ls -l build/deb/

# Not part of make check: goproxyd against nginx on this machine; writes
# docs/benchmarks.md and docs/benchmarks.png (BENCH_QUICK=1 for a smoke run).
bench: goproxyd
	sh tests/bench/run.sh

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
	rm -rf build build-san goproxyd

.PHONY: all deps check run soak bench deb install clean
