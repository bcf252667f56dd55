# make bench: the performance run of issue 8 (not part of `make test`).
# Builds what it needs, then bench/run_bench.py starts its own stack on
# loopback (provider, tool servers, nginx with the module, the SDK server)
# and writes bench/results.md and bench/check_curve.svg.
#
#   make bench                          everything, about 8 minutes on 2 cores
#   make bench BENCH_ARGS=--quick       one short run of each, for trying it out
#   make check-bench                    only the Google Benchmark binary

BENCH_ARGS  ?=
BENCH_APT   := libbenchmark-dev wrk valgrind
CHECK_BENCH := $(BUILD)/check-bench

.PHONY: bench bench-deps check-bench

# what the bench needs beyond `make deps` (installed when missing)
bench-deps:
	@missing=; for p in $(BENCH_APT); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then echo "bench: installing$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi

check-bench: $(CHECK_BENCH)

$(BUILD)/bench/%.o: bench/%.cpp | bench-deps
	@mkdir -p $(dir $@)
	$(CXX) $(filter-out -fvisibility=hidden -Wconversion,$(CORE_CXXFLAGS)) -c $< -o $@

$(CHECK_BENCH): $(BUILD)/bench/check_bench.o $(CORE)
	$(CXX) -o $@ $< $(CORE) -lbenchmark -pthread $(CORE_LIBS)

bench: bench-deps
	@$(MAKE) --no-print-directory module tool-server $(CHECK_BENCH)
	/usr/bin/python3 bench/run_bench.py --build $(abspath $(BUILD)) $(BENCH_ARGS)

-include $(BUILD)/bench/check_bench.d

# the tool server alone (bench/tool_server_bench.sh -> bench/results-tool-server.md)
.PHONY: bench-tool-server
bench-tool-server: bench-deps tool-server
	bench/tool_server_bench.sh
