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
	@echo "memlane: built $(BUILD)/bench/memlane-bench."
	@echo "memlane: the server, memlaned, arrives with the socket backend;"
	@echo "memlane: until then try: $(BUILD)/bench/memlane-bench engine"

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
