# The README's two commands: `make run` and `make test`. Both install missing
# Debian packages first (scripts/install-deps), then configure and build.
BUILD ?= build
ASAN_BUILD ?= build-asan

.PHONY: all deps build run test test-asan bench fuzz clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja:
	@meson setup $(BUILD) >/dev/null

build: deps $(BUILD)/build.ninja
	@ninja -C $(BUILD) >/dev/null

run: build
	@scripts/demo $(BUILD)

test: build
	@scripts/run-tests $(BUILD)

# The whole suite again under AddressSanitizer + UBSan.
$(ASAN_BUILD)/build.ninja:
	@meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Dbuildtype=debug >/dev/null

test-asan: deps $(ASAN_BUILD)/build.ninja
	@ninja -C $(ASAN_BUILD) >/dev/null
	@UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
		scripts/run-tests $(ASAN_BUILD)

bench: build
	@bench/run-parse $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
