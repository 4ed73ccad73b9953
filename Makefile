# memlane: the two entry points. Both install what is missing first.
#   make run   - build and start a node (socket backend, 127.0.0.1:11211)
#   make test  - build and run every test (normal and ASan+UBSan builds,
#                the golden transcripts, a bounded fuzz run)

BUILD ?= build
MESON ?= meson

.PHONY: all deps build run test bench format format-check clean

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

bench: build
	$(BUILD)/bench/memlane-bench engine
	$(BUILD)/bench/memlane-bench memory

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@bash scripts/format-check.sh

clean:
	rm -rf build build-asan build-fuzz
