# libFuzzer harnesses (fuzz/*.cpp) and the valgrind pass over the tool
# server.  Included by the top Makefile.
#
#   make fuzz                 build every harness, run each for FUZZ_TIME s (default 20)
#   make fuzz-short           the same, 5 s each (part of `make test`)
#   make fuzz-build           build only
#   make fuzz-repro HARNESS=token FILE=build/fuzz/artifacts/token/crash-...
#   make valgrind-tool-server t/test_tool_server.py with the tool server under memcheck
#
# The harnesses compile the core (src/) and the tool server (tool-server/,
# minus main.cpp) again, with clang++ and -fsanitize=fuzzer-no-link,address,
# undefined, into $(FUZZ_DIR); the normal build is not touched.  Corpora
# grow in $(FUZZ_DIR)/corpus/<harness>; the checked-in seeds in
# fuzz/corpus/<harness> are only read.

# For the integration suite (t/harness.py, t/conftest.py): which build to
# test, and whether it is sanitized (then nginx runs with the ASan runtime
# preloaded and sanitizer reports fail the tests).
export MCP_BUILD_DIR ?= $(abspath $(BUILD))
ifeq ($(SANITIZE),1)
export MCP_SANITIZE := 1
endif

FUZZ_CXX    ?= clang++-14
FUZZ_TIME   ?= 20
FUZZ_SHORT_TIME ?= 5
# always build/fuzz: the harnesses are sanitized anyway, SANITIZE=1 need not rebuild them
FUZZ_DIR    ?= build/fuzz
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CXXFLAGS := -std=c++17 -O1 -g -Wall -Wextra $(FUZZ_SAN) -fsanitize=fuzzer-no-link \
                 -Isrc -Itool-server -Ifuzz -MMD -MP
# -timeout: one input running longer than this is a finding (a hang).
FUZZ_RUN_FLAGS ?= -timeout=10 -rss_limit_mb=2048 -max_len=16384 -print_final_stats=0

FUZZ_CORE_HARNESSES := params_cookie sealed_token guard register token id_token jwks claims \
                       redirect_uri peek_jsonrpc session_fields store_values tools_list_filter admin \
                       token_exchange
FUZZ_TOOL_HARNESSES := tool_server_jsonrpc tool_server_identity tool_server_http
FUZZ_HARNESSES := $(FUZZ_CORE_HARNESSES) $(FUZZ_TOOL_HARNESSES)
FUZZ_BINS := $(addprefix $(FUZZ_DIR)/,$(FUZZ_HARNESSES))

FUZZ_CORE_OBJS := $(patsubst src/%.cpp,$(FUZZ_DIR)/core/%.o,$(wildcard src/*.cpp))
FUZZ_TOOL_OBJS := $(patsubst tool-server/%.cpp,$(FUZZ_DIR)/tool-server/%.o,\
                    $(filter-out tool-server/main.cpp,$(wildcard tool-server/*.cpp)))

.PHONY: fuzz fuzz-build fuzz-short fuzz-repro valgrind-tool-server

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@$(MAKE) --no-print-directory $(addprefix fuzz-run-,$(FUZZ_HARNESSES)) FUZZ_RUN_TIME=$(FUZZ_TIME)

fuzz-short: fuzz-build
	@$(MAKE) --no-print-directory $(addprefix fuzz-run-,$(FUZZ_HARNESSES)) FUZZ_RUN_TIME=$(FUZZ_SHORT_TIME)

# One harness for FUZZ_RUN_TIME seconds.  libFuzzer exits non-zero on a
# crash, a sanitizer report, a leak or a timeout, and leaves the input in
# $(FUZZ_DIR)/artifacts/<harness>/.  A harness with a fuzz/<harness>.dict
# gets it as its dictionary.
fuzz-run-%: $(FUZZ_DIR)/%
	@mkdir -p $(FUZZ_DIR)/corpus/$* $(FUZZ_DIR)/artifacts/$*
	@echo "fuzz: $* for $(FUZZ_RUN_TIME) s"
	@touch $(FUZZ_DIR)/$*.started
	@$(FUZZ_DIR)/$* $(FUZZ_RUN_FLAGS) -max_total_time=$(FUZZ_RUN_TIME) \
	    $(if $(wildcard fuzz/$*.dict),-dict=fuzz/$*.dict) \
	    -artifact_prefix=$(FUZZ_DIR)/artifacts/$*/ \
	    $(FUZZ_DIR)/corpus/$* fuzz/corpus/$* > $(FUZZ_DIR)/$*.log 2>&1 \
	  || { tail -n 60 $(FUZZ_DIR)/$*.log; \
	       echo "fuzz: $* FAILED (log: $(FUZZ_DIR)/$*.log)"; \
	       for f in $$(find $(FUZZ_DIR)/artifacts/$* -type f -newer $(FUZZ_DIR)/$*.started); do \
	         echo "fuzz: reproduce with: make fuzz-repro HARNESS=$* FILE=$$f"; done; \
	       exit 1; }
	@grep -E '^(Done|#[0-9]+ +DONE)' $(FUZZ_DIR)/$*.log | tail -n 1 || true

fuzz-repro: $(FUZZ_DIR)/$(HARNESS)
	@test -n "$(HARNESS)" -a -n "$(FILE)" || { echo "usage: make fuzz-repro HARNESS=name FILE=input" >&2; exit 2; }
	$(FUZZ_DIR)/$(HARNESS) $(FUZZ_RUN_FLAGS) $(FILE)

$(FUZZ_DIR)/core/%.o: src/%.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -c $< -o $@

$(FUZZ_DIR)/tool-server/%.o: tool-server/%.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -c $< -o $@

$(FUZZ_DIR)/harness/%.o: fuzz/%.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -c $< -o $@

$(addprefix $(FUZZ_DIR)/,$(FUZZ_CORE_HARNESSES)): $(FUZZ_DIR)/%: $(FUZZ_DIR)/harness/%.o $(FUZZ_CORE_OBJS)
	$(FUZZ_CXX) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ -ljwt -lcjson -lcrypto

# peek_jsonrpc is differential: it reads each body with the tool server's
# own parser too (tool-server/jsonrpc.cpp)
$(FUZZ_DIR)/peek_jsonrpc: $(FUZZ_DIR)/tool-server/jsonrpc.o
# so is the guard's property: what an allowed request runs, read as the
# tool server reads it
$(FUZZ_DIR)/guard: $(FUZZ_DIR)/tool-server/jsonrpc.o

# the tool server shares the core's decode_mirror_value, ToolPolicy, claim
# rules and ct_equal
$(addprefix $(FUZZ_DIR)/,$(FUZZ_TOOL_HARNESSES)): $(FUZZ_DIR)/%: $(FUZZ_DIR)/harness/%.o $(FUZZ_TOOL_OBJS) \
    $(FUZZ_DIR)/core/mirror_headers.o $(FUZZ_DIR)/core/encoding.o $(FUZZ_DIR)/core/tool_policy.o \
    $(FUZZ_DIR)/core/claims.o $(FUZZ_DIR)/core/crypto.o
	$(FUZZ_CXX) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ -levent -ljwt -lcjson -lsqlite3 -lcrypto -lpthread

-include $(FUZZ_CORE_OBJS:.o=.d) $(FUZZ_TOOL_OBJS:.o=.d) $(FUZZ_HARNESSES:%=$(FUZZ_DIR)/harness/%.d)

# valgrind memcheck over the tool server's integration tests: t/harness.py
# prefixes the tool server's command line with MCP_TOOL_SERVER_WRAPPER.
# Suppressions (fuzz/valgrind.supp) are for library false positives only.
VALGRIND ?= valgrind
valgrind-tool-server: tool-server
	@command -v $(VALGRIND) >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
	MCP_TOOL_SERVER_WRAPPER="$(VALGRIND) --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	  --show-leak-kinds=definite --track-origins=yes --suppressions=$(abspath fuzz/valgrind.supp) --log-file=%p.valgrind" \
	  $(PYTEST) -q t/test_tool_server.py $(VALGRIND_DESELECT) $(PYTEST_ARGS)

# Left out under valgrind: a throughput check (more than 20 saves acknowledged
# within 1 s before a SIGKILL), which valgrind's 20-50x slowdown fails by
# itself, and whose SIGKILL ends the process before memcheck could report;
# and a latency check (pipelined replies within 15 ms), which it also fails.
VALGRIND_DESELECT := --deselect t/test_tool_server.py::test_every_acknowledged_save_survives_kill_9_during_a_burst \
  --deselect t/test_tool_server.py::test_a_pipelined_reply_is_not_held_back_until_the_client_acknowledges_the_one_before
