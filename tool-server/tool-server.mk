# Make fragment for mcp-tool-server. Included by the top Makefile; also works
# standalone:  make -f tool-server/tool-server.mk BUILD=build build/mcp-tool-server
BUILD ?= build
SAN_FLAGS ?=
# set by the top Makefile (Debian's hardening flags); empty when standalone
HARDEN_CXXFLAGS ?=
HARDEN_LDFLAGS ?=

# redis/ is a folder of its own: fuzz/fuzz.mk links tool-server/*.cpp into
# its harnesses without hiredis.
TOOL_SERVER_SRCS := $(wildcard tool-server/*.cpp tool-server/redis/*.cpp)
# the few pure pieces of the gateway's core it shares, so that both apply
# the same rules: how an Mcp-Name value is read (src/mirror_headers.cpp),
# which scopes a call needs (src/tool_policy.cpp), which claims a tool
# needs (src/claims.cpp; cJSON, linked below) and how secrets are compared
# (ct_equal, src/crypto.cpp)
TOOL_SERVER_CORE_SRCS := src/mirror_headers.cpp src/encoding.cpp src/tool_policy.cpp src/claims.cpp \
                         src/crypto.cpp
TOOL_SERVER_OBJS := $(patsubst tool-server/%.cpp,$(BUILD)/tool-server/%.o,$(TOOL_SERVER_SRCS)) \
                    $(patsubst src/%.cpp,$(BUILD)/tool-server/core/%.o,$(TOOL_SERVER_CORE_SRCS))
TOOL_SERVER_CXX ?= $(CXX)
TOOL_SERVER_CXXFLAGS := -std=c++17 -O2 -g -Wall -Wextra -Werror -Wshadow $(SAN_FLAGS) $(HARDEN_CXXFLAGS) -MMD -MP
TOOL_SERVER_LIBS := -levent -ljwt -lcjson -lsqlite3 -lhiredis -lcrypto -lpthread

$(BUILD)/mcp-tool-server: $(TOOL_SERVER_OBJS)
	@mkdir -p $(dir $@)
	$(TOOL_SERVER_CXX) $(SAN_FLAGS) $(HARDEN_LDFLAGS) -o $@ $(TOOL_SERVER_OBJS) $(TOOL_SERVER_LIBS)

$(BUILD)/tool-server/%.o: tool-server/%.cpp
	@mkdir -p $(dir $@)
	$(TOOL_SERVER_CXX) $(TOOL_SERVER_CXXFLAGS) -c -o $@ $<

$(BUILD)/tool-server/core/%.o: src/%.cpp
	@mkdir -p $(dir $@)
	$(TOOL_SERVER_CXX) $(TOOL_SERVER_CXXFLAGS) -c -o $@ $<

-include $(TOOL_SERVER_OBJS:.o=.d)
