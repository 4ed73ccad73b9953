# memlane: the two entry points. Both install what is missing first.
#   make run   - build and start a node (socket backend, 127.0.0.1:11211)
#   make test  - build and run every test (normal and ASan+UBSan builds,
#                the golden transcripts, a bounded fuzz run)
#   make install PREFIX=/usr/local DESTDIR=
#              - memlaned, memlanectl, memlane-bench, the systemd unit and
#                the default options file
#   make deb   - the Debian package, in build-deb/, checked by lintian
#   make fuzz-diff SEEDS=1,2,3 STEPS=100000 [MODES=step,binary]
#              - a long randomized differential against memcached

BUILD ?= build
MESON ?= meson
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all deps build run test bench format format-check clean install deb \
	fuzz-diff

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja:
	$(MESON) setup $(BUILD) --buildtype=release

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	@echo "memlane: starting memlaned on 127.0.0.1:11211 with every core (Ctrl-C stops it)"
	@echo "memlane: connect with any memcached client, for example:"
	@echo "  /usr/bin/python3 -c \"from pymemcache.client.base import Client; c = Client(('127.0.0.1', 11211)); c.set('k', 'v'); print(c.get('k'))\""
	exec $(BUILD)/dataplane/memlaned -p 11211 -l 127.0.0.1 -v $$([ "$$(id -u)" = 0 ] && echo -u root)

test: deps
	@bash scripts/test.sh

SEEDS ?= 1,2,3
STEPS ?= 100000
MODES ?= step,pipelined,conns,udp,binary

fuzz-diff: build
	MEMLANED=$(BUILD)/dataplane/memlaned MEMCACHED=/usr/bin/memcached \
		/usr/bin/python3 tests/integration/test_diff_random.py \
		--seeds $(SEEDS) --steps $(STEPS) --modes $(MODES)

bench: build
	$(BUILD)/bench/memlane-bench engine
	$(BUILD)/bench/memlane-bench memory

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@bash scripts/format-check.sh

install: build
	$(MESON) configure $(BUILD) -Dprefix=$(PREFIX)
	ninja -C $(BUILD)
	DESTDIR=$(DESTDIR) $(MESON) install -C $(BUILD) --no-rebuild

# The package is built from a copy of the tree as git sees it (tracked
# files and new ones not ignored), so that build directories stay out.
deb: deps
	rm -rf build-deb
	mkdir -p build-deb/memlane
	git ls-files -z --cached --others --exclude-standard | \
		xargs -0 cp --parents -t build-deb/memlane
	cd build-deb/memlane && dpkg-buildpackage -us -uc -b
	lintian --fail-on error build-deb/*.deb

clean:
	rm -rf build build-asan build-fuzz build-deb
