/*
 * ngx_mcp_auth_module -- an OAuth 2.1 authorization server and guard for
 * remote MCP servers, as an nginx dynamic module.
 *
 * The nginx glue only: every decision is made by the C++ core behind
 * src/mcp_auth.h, which never throws across that boundary.  This file is
 * the module's entry: its directives, variables and configuration merging,
 * and the handlers it installs.  The rest of the glue is in nginx/, a file
 * a role: the endpoints (ngx_http_mcp_auth_endpoint.c), the calls out to
 * the provider (_fetch.c), the guard (_guard.c), the shared-memory store
 * (_zone.c) and its state file (_state.c), the Redis store (_redis.c), the
 * status endpoint (_status.c); what they share is ngx_http_mcp_auth.h.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_mcp_auth.h"


#define NGX_HTTP_MCP_AUTH_ERRLEN  512


/* A core and the settings it was built from (amcf->cores). */
typedef struct {
    ngx_str_t                 settings;        /* every value, serialized */
    mcpa_config_t            *core;
} ngx_http_mcp_auth_core_t;


/* A string directive's check, run on its line (mcpa_check_setting). */
typedef struct {
    ngx_conf_post_handler_pt  post_handler;
    mcpa_check_e              check;
} ngx_http_mcp_auth_check_t;


/* A directive kept as one tab-separated line of a list: its kind word
 * (may be empty) and the check of the line. */
typedef struct {
    ngx_str_t                 kind;
    mcpa_check_e              check;
} ngx_http_mcp_auth_line_t;


/* A lifetime's upper bound, checked on its line. */
typedef struct {
    ngx_conf_post_handler_pt  post_handler;
    time_t                    max;
    char                     *error;
} ngx_http_mcp_auth_lifetime_t;


static ngx_int_t ngx_http_mcp_auth_init(ngx_conf_t *cf);

static ngx_int_t ngx_http_mcp_auth_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_mcp_auth_request_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_mcp_auth_fetch_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_mcp_auth_trace_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_mcp_auth_value(ngx_http_variable_value_t *v,
    ngx_str_t *s, ngx_uint_t cacheable);

static void *ngx_http_mcp_auth_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_mcp_auth_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static void ngx_http_mcp_auth_merge_settings(
    ngx_http_mcp_auth_loc_conf_t *conf, ngx_http_mcp_auth_loc_conf_t *prev);
static mcpa_config_t *ngx_http_mcp_auth_core(ngx_conf_t *cf,
    ngx_http_mcp_auth_loc_conf_t *conf);
static void ngx_http_mcp_auth_cleanup_core(void *data);
static char *ngx_http_mcp_auth_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_mcp_auth_set_words(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_mcp_auth_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_mcp_auth_tool_scope(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_mcp_auth_append_args(ngx_conf_t *cf, ngx_str_t *field,
    ngx_str_t *kind, u_char sep, u_char end);
static char *ngx_http_mcp_auth_add_line(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_mcp_auth_set_ports(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_mcp_auth_check(ngx_conf_t *cf, void *post, void *data);
static char *ngx_http_mcp_auth_check_lifetime(ngx_conf_t *cf, void *post,
    void *data);
static void *ngx_http_mcp_auth_create_main_conf(ngx_conf_t *cf);
static ngx_int_t ngx_http_mcp_auth_init_module(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_mcp_auth_endpoints[] = {
    { ngx_string("authorization_server_metadata"),
      MCPA_EP_AUTHORIZATION_SERVER_METADATA },
    { ngx_string("protected_resource_metadata"),
      MCPA_EP_PROTECTED_RESOURCE_METADATA },
    { ngx_string("register"), MCPA_EP_REGISTER },
    { ngx_string("authorize"), MCPA_EP_AUTHORIZE },
    { ngx_string("consent"), MCPA_EP_CONSENT },
    { ngx_string("callback"), MCPA_EP_CALLBACK },
    { ngx_string("token"), MCPA_EP_TOKEN },
    { ngx_string("revoke"), MCPA_EP_REVOKE },
    { ngx_string("admin"), MCPA_EP_ADMIN },
    { ngx_string("account"), MCPA_EP_ACCOUNT },
    { ngx_string("status"), NGX_HTTP_MCP_AUTH_EP_STATUS },
    { ngx_string("metrics"), NGX_HTTP_MCP_AUTH_EP_METRICS },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_mcp_auth_provider_auths[] = {
    { ngx_string("client_secret_basic"),
      MCPA_PROVIDER_AUTH_CLIENT_SECRET_BASIC },
    { ngx_string("client_secret_post"), MCPA_PROVIDER_AUTH_CLIENT_SECRET_POST },
    { ngx_string("private_key_jwt"), MCPA_PROVIDER_AUTH_PRIVATE_KEY_JWT },
    { ngx_null_string, 0 }
};


static ngx_http_mcp_auth_check_t  ngx_http_mcp_auth_check_base_url =
    { ngx_http_mcp_auth_check, MCPA_CHECK_BASE_URL };
static ngx_http_mcp_auth_check_t  ngx_http_mcp_auth_check_provider_url =
    { ngx_http_mcp_auth_check, MCPA_CHECK_PROVIDER_URL };
static ngx_http_mcp_auth_check_t  ngx_http_mcp_auth_check_path =
    { ngx_http_mcp_auth_check, MCPA_CHECK_PATH };
static ngx_http_mcp_auth_check_t  ngx_http_mcp_auth_check_scopes =
    { ngx_http_mcp_auth_check, MCPA_CHECK_SCOPES };
static ngx_http_mcp_auth_check_t  ngx_http_mcp_auth_check_provider_scopes =
    { ngx_http_mcp_auth_check, MCPA_CHECK_PROVIDER_SCOPES };
static ngx_http_mcp_auth_check_t  ngx_http_mcp_auth_check_not_empty =
    { ngx_http_mcp_auth_check, MCPA_CHECK_NOT_EMPTY };
static ngx_http_mcp_auth_check_t  ngx_http_mcp_auth_check_tool_rule =
    { ngx_http_mcp_auth_check, MCPA_CHECK_TOOL_RULE };

static ngx_http_mcp_auth_line_t  ngx_http_mcp_auth_login_rule =
    { ngx_string("login"), MCPA_CHECK_CLAIM_RULE };
static ngx_http_mcp_auth_line_t  ngx_http_mcp_auth_email_rule =
    { ngx_string("email"), MCPA_CHECK_CLAIM_RULE };
static ngx_http_mcp_auth_line_t  ngx_http_mcp_auth_scope_rule =
    { ngx_string("scope"), MCPA_CHECK_CLAIM_RULE };
static ngx_http_mcp_auth_line_t  ngx_http_mcp_auth_tool_claim_rule =
    { ngx_string("tool"), MCPA_CHECK_CLAIM_RULE };
static ngx_http_mcp_auth_line_t  ngx_http_mcp_auth_scope_description =
    { ngx_null_string, MCPA_CHECK_SCOPE_DESCRIPTION };
static ngx_http_mcp_auth_line_t  ngx_http_mcp_auth_provider_param =
    { ngx_null_string, MCPA_CHECK_PROVIDER_PARAM };
static ngx_http_mcp_auth_line_t  ngx_http_mcp_auth_limit =
    { ngx_null_string, MCPA_CHECK_LIMIT };
static ngx_http_mcp_auth_line_t  ngx_http_mcp_auth_exchange_audience =
    { ngx_null_string, MCPA_CHECK_EXCHANGE_AUDIENCE };
static ngx_http_mcp_auth_line_t  ngx_http_mcp_auth_exchange_client =
    { ngx_null_string, MCPA_CHECK_EXCHANGE_CLIENT };
static ngx_http_mcp_auth_line_t  ngx_http_mcp_auth_service_client =
    { ngx_null_string, MCPA_CHECK_SERVICE_CLIENT };
static ngx_http_mcp_auth_line_t  ngx_http_mcp_auth_trusted_issuer =
    { ngx_null_string, MCPA_CHECK_TRUSTED_ISSUER };
static ngx_http_mcp_auth_line_t  ngx_http_mcp_auth_enterprise_client =
    { ngx_null_string, MCPA_CHECK_ENTERPRISE_CLIENT };

/* lifetimes: positive, at most 2^31 s; a code at most 10 minutes (RFC 6749
 * section 4.1.2) */
static ngx_http_mcp_auth_lifetime_t  ngx_http_mcp_auth_lifetime =
    { ngx_http_mcp_auth_check_lifetime, (time_t) 1 << 31,
      "must be positive and at most 68 years" };
static ngx_http_mcp_auth_lifetime_t  ngx_http_mcp_auth_code_lifetime =
    { ngx_http_mcp_auth_check_lifetime, 600,
      "must be from 1s to 10m" };


static ngx_command_t  ngx_http_mcp_auth_commands[] = {

    { ngx_string("mcp_auth_endpoint"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_mcp_auth_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, endpoint),
      ngx_http_mcp_auth_endpoints },

    { ngx_string("mcp_auth_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, issuer),
      &ngx_http_mcp_auth_check_base_url },

    { ngx_string("mcp_auth_resource"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, resource),
      &ngx_http_mcp_auth_check_base_url },

    { ngx_string("mcp_auth_resource_name"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, resource_name),
      NULL },

    { ngx_string("mcp_auth_scopes"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_mcp_auth_set_words,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, scopes),
      &ngx_http_mcp_auth_check_scopes },

    { ngx_string("mcp_auth_cors_origins"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_mcp_auth_set_words,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, cors_origins),
      NULL },

    { ngx_string("mcp_auth_authorization_path"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, authorization_path),
      &ngx_http_mcp_auth_check_path },

    { ngx_string("mcp_auth_token_path"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, token_path),
      &ngx_http_mcp_auth_check_path },

    { ngx_string("mcp_auth_registration_path"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, registration_path),
      &ngx_http_mcp_auth_check_path },

    { ngx_string("mcp_auth_revocation_path"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, revocation_path),
      &ngx_http_mcp_auth_check_path },

    { ngx_string("mcp_auth_consent_path"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, consent_path),
      &ngx_http_mcp_auth_check_path },

    { ngx_string("mcp_auth_callback_path"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, callback_path),
      &ngx_http_mcp_auth_check_path },

    { ngx_string("mcp_auth_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, key_file),
      &ngx_http_mcp_auth_check_not_empty },

    { ngx_string("mcp_auth_admin_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, admin_key_file),
      &ngx_http_mcp_auth_check_not_empty },

    { ngx_string("mcp_auth_provider_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_issuer),
      &ngx_http_mcp_auth_check_base_url },

    { ngx_string("mcp_auth_provider_authorization_endpoint"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_authorization_endpoint),
      &ngx_http_mcp_auth_check_provider_url },

    { ngx_string("mcp_auth_provider_token_endpoint"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_token_endpoint),
      &ngx_http_mcp_auth_check_provider_url },

    { ngx_string("mcp_auth_provider_client_id"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_client_id),
      &ngx_http_mcp_auth_check_not_empty },

    { ngx_string("mcp_auth_provider_client_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_client_secret_file),
      &ngx_http_mcp_auth_check_not_empty },

    { ngx_string("mcp_auth_provider_client_auth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_client_auth),
      ngx_http_mcp_auth_provider_auths },

    { ngx_string("mcp_auth_provider_private_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_private_key_file),
      &ngx_http_mcp_auth_check_not_empty },

    { ngx_string("mcp_auth_provider_key_id"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_key_id),
      &ngx_http_mcp_auth_check_not_empty },

    { ngx_string("mcp_auth_provider_certificate_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_certificate_file),
      &ngx_http_mcp_auth_check_not_empty },

    { ngx_string("mcp_auth_provider_scopes"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_mcp_auth_set_words,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_scopes),
      &ngx_http_mcp_auth_check_provider_scopes },

    { ngx_string("mcp_auth_access_token_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, access_token_ttl),
      &ngx_http_mcp_auth_lifetime },

    { ngx_string("mcp_auth_refresh_token_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, refresh_token_ttl),
      &ngx_http_mcp_auth_lifetime },

    { ngx_string("mcp_auth_session_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, session_ttl),
      &ngx_http_mcp_auth_lifetime },

    { ngx_string("mcp_auth_code_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, code_ttl),
      &ngx_http_mcp_auth_code_lifetime },

    { ngx_string("mcp_auth_login_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, login_ttl),
      &ngx_http_mcp_auth_lifetime },

    { ngx_string("mcp_auth_client_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, client_ttl),
      &ngx_http_mcp_auth_lifetime },

    { ngx_string("mcp_auth_consent_remember"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, consent_remember),
      NULL },

    { ngx_string("mcp_auth_secure_cookies"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, secure_cookies),
      NULL },

    { ngx_string("mcp_auth_zone"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_mcp_auth_zone,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mcp_auth_redis"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_mcp_auth_redis,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mcp_auth_provider_token_location"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_token_location),
      NULL },

    { ngx_string("mcp_auth_provider_jwks_location"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_jwks_location),
      NULL },

    { ngx_string("mcp_auth_protect"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, protect),
      NULL },

    { ngx_string("mcp_auth_pass_provider_token"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, pass_provider_token),
      NULL },

    { ngx_string("mcp_auth_filter_tools"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, filter_tools),
      NULL },

    { ngx_string("mcp_auth_filter_tools_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, filter_tools_max_size),
      NULL },

    { ngx_string("mcp_auth_identity_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, identity_key_file),
      &ngx_http_mcp_auth_check_not_empty },

    { ngx_string("mcp_auth_identity_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, identity_issuer),
      &ngx_http_mcp_auth_check_not_empty },

    { ngx_string("mcp_auth_identity_audience"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, identity_audience),
      &ngx_http_mcp_auth_check_not_empty },

    { ngx_string("mcp_auth_tool_scope"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_mcp_auth_tool_scope,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, tool_scopes),
      &ngx_http_mcp_auth_check_tool_rule },

    { ngx_string("mcp_auth_require_claim"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_mcp_auth_add_line,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, claim_rules),
      &ngx_http_mcp_auth_login_rule },

    { ngx_string("mcp_auth_require_email_domain"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_mcp_auth_add_line,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, claim_rules),
      &ngx_http_mcp_auth_email_rule },

    { ngx_string("mcp_auth_scope_claim"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_mcp_auth_add_line,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, claim_rules),
      &ngx_http_mcp_auth_scope_rule },

    { ngx_string("mcp_auth_tool_claim"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_mcp_auth_add_line,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, claim_rules),
      &ngx_http_mcp_auth_tool_claim_rule },

    { ngx_string("mcp_auth_scope_description"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_mcp_auth_add_line,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, scope_descriptions),
      &ngx_http_mcp_auth_scope_description },

    { ngx_string("mcp_auth_provider_param"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_mcp_auth_add_line,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_params),
      &ngx_http_mcp_auth_provider_param },

    { ngx_string("mcp_auth_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_mcp_auth_add_line,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, limits),
      &ngx_http_mcp_auth_limit },

    { ngx_string("mcp_auth_exchange_audience"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_mcp_auth_add_line,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, exchange_audiences),
      &ngx_http_mcp_auth_exchange_audience },

    { ngx_string("mcp_auth_exchange_client"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_mcp_auth_add_line,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, exchange_clients),
      &ngx_http_mcp_auth_exchange_client },

    { ngx_string("mcp_auth_service_client"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_mcp_auth_add_line,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, service_clients),
      &ngx_http_mcp_auth_service_client },

    { ngx_string("mcp_auth_trusted_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_mcp_auth_add_line,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, trusted_issuers),
      &ngx_http_mcp_auth_trusted_issuer },

    { ngx_string("mcp_auth_enterprise_client"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_mcp_auth_add_line,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, enterprise_clients),
      &ngx_http_mcp_auth_enterprise_client },

    { ngx_string("mcp_auth_metrics_tools"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_mcp_auth_set_words,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, metrics_tools),
      NULL },

    { ngx_string("mcp_auth_audit_log"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE123,
      ngx_http_mcp_auth_audit_log,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mcp_auth_stream_check"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, stream_check),
      NULL },

    { ngx_string("mcp_auth_peek_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, peek_size),
      NULL },

    { ngx_string("mcp_auth_client_metadata_location"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, client_metadata_location),
      NULL },

    { ngx_string("mcp_auth_client_metadata_documents"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, client_metadata_documents),
      NULL },

    { ngx_string("mcp_auth_client_metadata_allow_private"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, client_metadata_allow_private),
      NULL },

    { ngx_string("mcp_auth_client_metadata_ports"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_mcp_auth_set_ports,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, client_metadata_ports),
      NULL },

    { ngx_string("mcp_auth_max_body"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, max_body),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_mcp_auth_module_ctx = {
    ngx_http_mcp_auth_add_variables,       /* preconfiguration */
    ngx_http_mcp_auth_init,                /* postconfiguration */

    ngx_http_mcp_auth_create_main_conf,    /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_mcp_auth_create_loc_conf,     /* create location configuration */
    ngx_http_mcp_auth_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_mcp_auth_module = {
    NGX_MODULE_V1,
    &ngx_http_mcp_auth_module_ctx,         /* module context */
    ngx_http_mcp_auth_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_mcp_auth_init_module,         /* init module */
    ngx_http_mcp_auth_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_mcp_auth_exit_process,        /* exit process */
    ngx_http_mcp_auth_exit_master,         /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_mcp_auth_vars[] = {

    { ngx_string("mcp_auth_fetch_body"), NULL,
      ngx_http_mcp_auth_fetch_variable,
      offsetof(ngx_http_mcp_auth_ctx_t, fetch.body),
      NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_NOHASH, 0 },

    { ngx_string("mcp_auth_fetch_url"), NULL,
      ngx_http_mcp_auth_fetch_variable,
      offsetof(ngx_http_mcp_auth_ctx_t, fetch.url),
      NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_NOHASH, 0 },

    { ngx_string("mcp_auth_fetch_host"), NULL,
      ngx_http_mcp_auth_fetch_variable,
      offsetof(ngx_http_mcp_auth_ctx_t, doc.host),
      NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_NOHASH, 0 },

    { ngx_string("mcp_auth_fetch_authorization"), NULL,
      ngx_http_mcp_auth_fetch_variable,
      offsetof(ngx_http_mcp_auth_ctx_t, fetch.authorization),
      NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_NOHASH, 0 },

    { ngx_string("mcp_auth_subject"), NULL,
      ngx_http_mcp_auth_request_variable,
      offsetof(ngx_http_mcp_auth_ctx_t, guard.subject),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("mcp_auth_client_id"), NULL,
      ngx_http_mcp_auth_request_variable,
      offsetof(ngx_http_mcp_auth_ctx_t, guard.client_id),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("mcp_auth_scope"), NULL,
      ngx_http_mcp_auth_request_variable,
      offsetof(ngx_http_mcp_auth_ctx_t, guard.scope),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("mcp_auth_session_tag"), NULL,
      ngx_http_mcp_auth_request_variable,
      offsetof(ngx_http_mcp_auth_ctx_t, guard.session_tag),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("mcp_auth_identity"), NULL,
      ngx_http_mcp_auth_request_variable,
      offsetof(ngx_http_mcp_auth_ctx_t, guard.identity),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("mcp_auth_traceparent"), NULL,
      ngx_http_mcp_auth_trace_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("mcp_auth_trace_id"), NULL,
      ngx_http_mcp_auth_trace_variable, 1,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("mcp_auth_request_id"), NULL,
      ngx_http_mcp_auth_trace_variable, 2,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/* --- variables ------------------------------------------------------------ */

static ngx_int_t
ngx_http_mcp_auth_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_mcp_auth_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/* A variable's value from a string of the request's context (NULL: none). */
static ngx_int_t
ngx_http_mcp_auth_value(ngx_http_variable_value_t *v, ngx_str_t *s,
    ngx_uint_t cacheable)
{
    if (s == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = cacheable ? 0 : 1;
    v->not_found = 0;
    v->data = s->data;

    return NGX_OK;
}


/* $mcp_auth_fetch_*: what the parent request is sending to the provider. */
static ngx_int_t
ngx_http_mcp_auth_fetch_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_mcp_auth_ctx_t  *ctx;

    ctx = r->parent ? ngx_http_get_module_ctx(r->parent,
                                              ngx_http_mcp_auth_module)
                    : NULL;

    return ngx_http_mcp_auth_value(v,
               ctx ? (ngx_str_t *) ((u_char *) ctx + data) : NULL, 0);
}


/*
 * $mcp_auth_traceparent: the W3C traceparent to send on (the client's trace
 * id, or a new one, with this hop's parent id); $mcp_auth_trace_id: its
 * trace id; $mcp_auth_request_id: the request's id, as in the audit log.
 * The same for the request and its subrequests.
 */
static ngx_int_t
ngx_http_mcp_auth_trace_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t  *s;

    s = (data == 2) ? ngx_http_mcp_auth_request_id(r)
        : data ? ngx_http_mcp_auth_trace_id(r) : ngx_http_mcp_auth_traceparent(r);

    return ngx_http_mcp_auth_value(v, s, 1);
}


/* $mcp_auth_subject and friends: what the guard established. */
static ngx_int_t
ngx_http_mcp_auth_request_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_mcp_auth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_mcp_auth_module);

    return ngx_http_mcp_auth_value(v,
               (ctx && ctx->guard.done) ? (ngx_str_t *) ((u_char *) ctx + data)
                                        : NULL, 1);
}


/* --- configuration ------------------------------------------------------- */

static void *
ngx_http_mcp_auth_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_mcp_auth_main_conf_t  *amcf;

    amcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_mcp_auth_main_conf_t));
    if (amcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&amcf->cores, cf->pool, 4,
                       sizeof(ngx_http_mcp_auth_core_t))
        != NGX_OK)
    {
        return NULL;
    }

    return amcf;
}


static void *
ngx_http_mcp_auth_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_mcp_auth_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_mcp_auth_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->issuer = { 0, NULL };
     *     ... every other ngx_str_t setting likewise
     *     conf->core = NULL;
     */

    conf->endpoint = NGX_CONF_UNSET_UINT;
    conf->provider_client_auth = NGX_CONF_UNSET_UINT;
    conf->access_token_ttl = NGX_CONF_UNSET;
    conf->refresh_token_ttl = NGX_CONF_UNSET;
    conf->session_ttl = NGX_CONF_UNSET;
    conf->code_ttl = NGX_CONF_UNSET;
    conf->login_ttl = NGX_CONF_UNSET;
    conf->client_ttl = NGX_CONF_UNSET;
    conf->consent_remember = NGX_CONF_UNSET;
    conf->secure_cookies = NGX_CONF_UNSET;
    conf->pass_provider_token = NGX_CONF_UNSET;
    conf->filter_tools = NGX_CONF_UNSET;
    conf->filter_tools_max_size = NGX_CONF_UNSET_SIZE;
    conf->client_metadata_documents = NGX_CONF_UNSET;
    conf->client_metadata_allow_private = NGX_CONF_UNSET;
    conf->client_metadata_ports = NGX_CONF_UNSET_PTR;
    conf->max_body = NGX_CONF_UNSET_SIZE;
    conf->shm_zone = NGX_CONF_UNSET_PTR;
    conf->redis = NGX_CONF_UNSET_PTR;
    conf->protect = NGX_CONF_UNSET;
    conf->stream_check = NGX_CONF_UNSET_MSEC;
    conf->peek_size = NGX_CONF_UNSET_SIZE;

    return conf;
}


/*
 * The settings a location's core is built from, written out in full: two
 * locations share a core exactly when these bytes are the same.
 */
typedef struct {
    mcpa_settings_t           settings;
    ngx_array_t              *bytes;           /* of u_char */
    ngx_uint_t                failed;
} ngx_http_mcp_auth_fill_t;


static void
ngx_http_mcp_auth_fill_bytes(ngx_http_mcp_auth_fill_t *f, const void *data,
    size_t len)
{
    u_char  *p;

    if (len == 0) {
        return;
    }

    p = ngx_array_push_n(f->bytes, len);
    if (p == NULL) {
        f->failed = 1;
        return;
    }

    ngx_memcpy(p, data, len);
}


static mcpa_str_t
ngx_http_mcp_auth_fill_str(ngx_http_mcp_auth_fill_t *f, ngx_str_t *value)
{
    mcpa_str_t  s;

    ngx_http_mcp_auth_fill_bytes(f, &value->len, sizeof(value->len));
    ngx_http_mcp_auth_fill_bytes(f, value->data, value->len);

    s.data = (const char *) value->data;
    s.len = value->len;

    return s;
}


static int64_t
ngx_http_mcp_auth_fill_num(ngx_http_mcp_auth_fill_t *f, int64_t value)
{
    ngx_http_mcp_auth_fill_bytes(f, &value, sizeof(value));

    return value;
}


/* The core's settings; unset stays unset (-1, ""): the core has defaults. */
static void
ngx_http_mcp_auth_merge_settings(ngx_http_mcp_auth_loc_conf_t *conf,
    ngx_http_mcp_auth_loc_conf_t *prev)
{
    ngx_conf_merge_str_value(conf->issuer, prev->issuer, "");
    ngx_conf_merge_str_value(conf->resource, prev->resource, "");
    ngx_conf_merge_str_value(conf->resource_name, prev->resource_name, "");
    ngx_conf_merge_str_value(conf->scopes, prev->scopes, "");
    ngx_conf_merge_str_value(conf->cors_origins, prev->cors_origins, "");
    ngx_conf_merge_str_value(conf->authorization_path,
                             prev->authorization_path, "");
    ngx_conf_merge_str_value(conf->token_path, prev->token_path, "");
    ngx_conf_merge_str_value(conf->registration_path,
                             prev->registration_path, "");
    ngx_conf_merge_str_value(conf->revocation_path, prev->revocation_path,
                             "");
    ngx_conf_merge_str_value(conf->consent_path, prev->consent_path, "");
    ngx_conf_merge_str_value(conf->callback_path, prev->callback_path, "");
    ngx_conf_merge_str_value(conf->key_file, prev->key_file, "");
    ngx_conf_merge_str_value(conf->admin_key_file, prev->admin_key_file, "");
    ngx_conf_merge_str_value(conf->provider_issuer, prev->provider_issuer,
                             "");
    ngx_conf_merge_str_value(conf->provider_authorization_endpoint,
                             prev->provider_authorization_endpoint, "");
    ngx_conf_merge_str_value(conf->provider_token_endpoint,
                             prev->provider_token_endpoint, "");
    ngx_conf_merge_str_value(conf->provider_client_id,
                             prev->provider_client_id, "");
    ngx_conf_merge_str_value(conf->provider_client_secret_file,
                             prev->provider_client_secret_file, "");
    ngx_conf_merge_uint_value(conf->provider_client_auth,
                              prev->provider_client_auth,
                              NGX_CONF_UNSET_UINT);
    ngx_conf_merge_str_value(conf->provider_private_key_file,
                             prev->provider_private_key_file, "");
    ngx_conf_merge_str_value(conf->provider_key_id, prev->provider_key_id,
                             "");
    ngx_conf_merge_str_value(conf->provider_certificate_file,
                             prev->provider_certificate_file, "");
    ngx_conf_merge_str_value(conf->provider_scopes, prev->provider_scopes,
                             "");
    ngx_conf_merge_sec_value(conf->access_token_ttl, prev->access_token_ttl,
                             NGX_CONF_UNSET);
    ngx_conf_merge_sec_value(conf->refresh_token_ttl,
                             prev->refresh_token_ttl, NGX_CONF_UNSET);
    ngx_conf_merge_sec_value(conf->session_ttl, prev->session_ttl,
                             NGX_CONF_UNSET);
    ngx_conf_merge_sec_value(conf->code_ttl, prev->code_ttl, NGX_CONF_UNSET);
    ngx_conf_merge_sec_value(conf->login_ttl, prev->login_ttl,
                             NGX_CONF_UNSET);
    ngx_conf_merge_sec_value(conf->client_ttl, prev->client_ttl,
                             NGX_CONF_UNSET);
    ngx_conf_merge_value(conf->consent_remember, prev->consent_remember,
                         NGX_CONF_UNSET);
    ngx_conf_merge_value(conf->secure_cookies, prev->secure_cookies,
                         NGX_CONF_UNSET);
    ngx_conf_merge_value(conf->pass_provider_token, prev->pass_provider_token,
                         NGX_CONF_UNSET);
    ngx_conf_merge_value(conf->client_metadata_documents,
                         prev->client_metadata_documents, NGX_CONF_UNSET);
    ngx_conf_merge_value(conf->client_metadata_allow_private,
                         prev->client_metadata_allow_private, NGX_CONF_UNSET);
    ngx_conf_merge_ptr_value(conf->client_metadata_ports,
                             prev->client_metadata_ports, NULL);
    ngx_conf_merge_str_value(conf->identity_key_file,
                             prev->identity_key_file, "");
    ngx_conf_merge_str_value(conf->identity_issuer, prev->identity_issuer,
                             "");
    ngx_conf_merge_str_value(conf->identity_audience,
                             prev->identity_audience, "");
    ngx_conf_merge_str_value(conf->tool_scopes, prev->tool_scopes, "");
    ngx_conf_merge_str_value(conf->metrics_tools, prev->metrics_tools, "");
    ngx_conf_merge_str_value(conf->claim_rules, prev->claim_rules, "");
    ngx_conf_merge_str_value(conf->scope_descriptions,
                             prev->scope_descriptions, "");
    ngx_conf_merge_str_value(conf->provider_params, prev->provider_params,
                             "");
    ngx_conf_merge_str_value(conf->limits, prev->limits, "");
    ngx_conf_merge_str_value(conf->exchange_audiences,
                             prev->exchange_audiences, "");
    ngx_conf_merge_str_value(conf->exchange_clients, prev->exchange_clients,
                             "");
    ngx_conf_merge_str_value(conf->service_clients, prev->service_clients,
                             "");
    ngx_conf_merge_str_value(conf->trusted_issuers, prev->trusted_issuers,
                             "");
    ngx_conf_merge_str_value(conf->enterprise_clients,
                             prev->enterprise_clients, "");
}


/*
 * The core for a location's settings: one per distinct set of settings,
 * built the first time a location asks for it.  NULL (logged) on failure.
 */
static mcpa_config_t *
ngx_http_mcp_auth_core(ngx_conf_t *cf, ngx_http_mcp_auth_loc_conf_t *conf)
{
    u_char                         err[NGX_HTTP_MCP_AUTH_ERRLEN];
    ngx_uint_t                     i;
    mcpa_config_t                 *built;
    mcpa_settings_t               *s;
    ngx_pool_cleanup_t            *cln;
    ngx_http_mcp_auth_core_t      *core;
    ngx_http_mcp_auth_fill_t       f;
    ngx_http_mcp_auth_main_conf_t *amcf;

    f.bytes = ngx_array_create(cf->temp_pool, 1024, 1);
    if (f.bytes == NULL) {
        return NULL;
    }

    f.failed = 0;
    s = &f.settings;
    mcpa_settings_init(s);

    s->issuer = ngx_http_mcp_auth_fill_str(&f, &conf->issuer);
    s->resource = ngx_http_mcp_auth_fill_str(&f, &conf->resource);
    s->resource_name = ngx_http_mcp_auth_fill_str(&f, &conf->resource_name);
    s->scopes = ngx_http_mcp_auth_fill_str(&f, &conf->scopes);
    s->cors_origins = ngx_http_mcp_auth_fill_str(&f, &conf->cors_origins);
    s->authorization_path =
        ngx_http_mcp_auth_fill_str(&f, &conf->authorization_path);
    s->token_path = ngx_http_mcp_auth_fill_str(&f, &conf->token_path);
    s->registration_path =
        ngx_http_mcp_auth_fill_str(&f, &conf->registration_path);
    s->revocation_path =
        ngx_http_mcp_auth_fill_str(&f, &conf->revocation_path);
    s->consent_path = ngx_http_mcp_auth_fill_str(&f, &conf->consent_path);
    s->callback_path = ngx_http_mcp_auth_fill_str(&f, &conf->callback_path);
    s->key_file = ngx_http_mcp_auth_fill_str(&f, &conf->key_file);
    s->admin_key_file = ngx_http_mcp_auth_fill_str(&f, &conf->admin_key_file);
    s->provider_issuer =
        ngx_http_mcp_auth_fill_str(&f, &conf->provider_issuer);
    s->provider_authorization_endpoint =
        ngx_http_mcp_auth_fill_str(&f, &conf->provider_authorization_endpoint);
    s->provider_token_endpoint =
        ngx_http_mcp_auth_fill_str(&f, &conf->provider_token_endpoint);
    s->provider_client_id =
        ngx_http_mcp_auth_fill_str(&f, &conf->provider_client_id);
    s->provider_client_secret_file =
        ngx_http_mcp_auth_fill_str(&f, &conf->provider_client_secret_file);
    s->provider_client_auth = (int) ngx_http_mcp_auth_fill_num(&f,
        conf->provider_client_auth == NGX_CONF_UNSET_UINT
        ? -1 : (int64_t) conf->provider_client_auth);
    s->provider_private_key_file =
        ngx_http_mcp_auth_fill_str(&f, &conf->provider_private_key_file);
    s->provider_key_id =
        ngx_http_mcp_auth_fill_str(&f, &conf->provider_key_id);
    s->provider_certificate_file =
        ngx_http_mcp_auth_fill_str(&f, &conf->provider_certificate_file);
    s->provider_scopes =
        ngx_http_mcp_auth_fill_str(&f, &conf->provider_scopes);
    s->access_token_ttl =
        ngx_http_mcp_auth_fill_num(&f, conf->access_token_ttl);
    s->refresh_token_ttl =
        ngx_http_mcp_auth_fill_num(&f, conf->refresh_token_ttl);
    s->session_ttl = ngx_http_mcp_auth_fill_num(&f, conf->session_ttl);
    s->code_ttl = ngx_http_mcp_auth_fill_num(&f, conf->code_ttl);
    s->login_ttl = ngx_http_mcp_auth_fill_num(&f, conf->login_ttl);
    s->client_ttl = ngx_http_mcp_auth_fill_num(&f, conf->client_ttl);
    s->session_cache_ttl = ngx_http_mcp_auth_fill_num(&f,
        conf->redis ? (int64_t) ngx_mcp_auth_redis_cache(conf->redis) : -1);
    s->consent_remember =
        (int) ngx_http_mcp_auth_fill_num(&f, conf->consent_remember);
    s->secure_cookies =
        (int) ngx_http_mcp_auth_fill_num(&f, conf->secure_cookies);
    s->pass_provider_token =
        (int) ngx_http_mcp_auth_fill_num(&f, conf->pass_provider_token);
    s->filter_tools = (int) ngx_http_mcp_auth_fill_num(&f, conf->filter_tools);
    s->filter_tools_max_size = ngx_http_mcp_auth_fill_num(&f,
                                  (int64_t) conf->filter_tools_max_size);
    s->client_metadata_documents =
        (int) ngx_http_mcp_auth_fill_num(&f, conf->client_metadata_documents);
    s->client_metadata_allow_private = (int) ngx_http_mcp_auth_fill_num(&f,
        conf->client_metadata_allow_private);
    s->client_metadata_fetch = (int) ngx_http_mcp_auth_fill_num(&f,
        conf->client_metadata_location.len ? 1 : -1);

    if (conf->client_metadata_ports) {
        s->client_metadata_ports = conf->client_metadata_ports->elts;
        s->client_metadata_ports_n = conf->client_metadata_ports->nelts;
        ngx_http_mcp_auth_fill_bytes(&f, s->client_metadata_ports,
                                     s->client_metadata_ports_n
                                     * sizeof(int));
    }

    s->identity_key_file =
        ngx_http_mcp_auth_fill_str(&f, &conf->identity_key_file);
    s->identity_issuer =
        ngx_http_mcp_auth_fill_str(&f, &conf->identity_issuer);
    s->identity_audience =
        ngx_http_mcp_auth_fill_str(&f, &conf->identity_audience);
    s->tool_scopes = ngx_http_mcp_auth_fill_str(&f, &conf->tool_scopes);
    s->metrics_tools = ngx_http_mcp_auth_fill_str(&f, &conf->metrics_tools);
    s->claim_rules = ngx_http_mcp_auth_fill_str(&f, &conf->claim_rules);
    s->scope_descriptions =
        ngx_http_mcp_auth_fill_str(&f, &conf->scope_descriptions);
    s->provider_params =
        ngx_http_mcp_auth_fill_str(&f, &conf->provider_params);
    s->limits = ngx_http_mcp_auth_fill_str(&f, &conf->limits);
    s->exchange_audiences = ngx_http_mcp_auth_fill_str(&f,
                                                     &conf->exchange_audiences);
    s->exchange_clients = ngx_http_mcp_auth_fill_str(&f,
                                                   &conf->exchange_clients);
    s->service_clients = ngx_http_mcp_auth_fill_str(&f,
                                                  &conf->service_clients);
    s->trusted_issuers = ngx_http_mcp_auth_fill_str(&f,
                                                  &conf->trusted_issuers);
    s->enterprise_clients = ngx_http_mcp_auth_fill_str(&f,
                                                   &conf->enterprise_clients);

    if (f.failed) {
        return NULL;
    }

    /* locations with the same settings share one core */
    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_mcp_auth_module);

    core = amcf->cores.elts;
    for (i = 0; i < amcf->cores.nelts; i++) {
        if (core[i].settings.len == f.bytes->nelts
            && ngx_memcmp(core[i].settings.data, f.bytes->elts,
                          f.bytes->nelts) == 0)
        {
            return core[i].core;
        }
    }

    built = mcpa_config_build(s, (char *) err, sizeof(err));
    if (built == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NULL;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        mcpa_config_free(built);
        return NULL;
    }

    cln->handler = ngx_http_mcp_auth_cleanup_core;
    cln->data = built;

    core = ngx_array_push(&amcf->cores);
    if (core == NULL) {
        return NULL;
    }

    core->settings.len = f.bytes->nelts;
    core->settings.data = ngx_pnalloc(cf->pool, f.bytes->nelts);
    if (core->settings.data == NULL) {
        return NULL;
    }

    ngx_memcpy(core->settings.data, f.bytes->elts, f.bytes->nelts);
    core->core = built;

    return built;
}


static char *
ngx_http_mcp_auth_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_mcp_auth_loc_conf_t *prev = parent;
    ngx_http_mcp_auth_loc_conf_t *conf = child;

    u_char                         err[NGX_HTTP_MCP_AUTH_ERRLEN];
    const char                    *what;
    ngx_http_mcp_auth_zone_t      *zone;
    ngx_http_mcp_auth_main_conf_t *amcf;

    /* the endpoint a location serves is not inherited */
    if (conf->endpoint == NGX_CONF_UNSET_UINT) {
        conf->endpoint = MCPA_EP_NONE;
    }

    ngx_conf_merge_size_value(conf->max_body, prev->max_body, 64 * 1024);
    ngx_conf_merge_ptr_value(conf->shm_zone, prev->shm_zone, NULL);
    ngx_conf_merge_ptr_value(conf->redis, prev->redis, NULL);

    if (conf->shm_zone && conf->redis) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"mcp_auth_zone\" and \"mcp_auth_redis\" both "
                           "apply here; a location keeps its state in one");
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_value(conf->protect, prev->protect, 0);
    ngx_conf_merge_msec_value(conf->stream_check, prev->stream_check, 60000);
    ngx_conf_merge_size_value(conf->peek_size, prev->peek_size, 1024 * 1024);
    /* the guard tells and the body filter acts: both see these */
    ngx_conf_merge_value(conf->filter_tools, prev->filter_tools, 0);
    ngx_conf_merge_size_value(conf->filter_tools_max_size,
                              prev->filter_tools_max_size, 256 * 1024);
    ngx_conf_merge_str_value(conf->provider_token_location,
                             prev->provider_token_location, "");
    ngx_conf_merge_str_value(conf->provider_jwks_location,
                             prev->provider_jwks_location, "");
    ngx_conf_merge_str_value(conf->client_metadata_location,
                             prev->client_metadata_location, "");

    ngx_http_mcp_auth_merge_settings(conf, prev);

    conf->response_slot = ngx_http_mcp_auth_response_slot(conf,
                                                  &conf->unavailable_slot);

    if (conf->endpoint == MCPA_EP_NONE && !conf->protect) {
        return NGX_CONF_OK;
    }

    /* the operators' endpoints, served by the glue alone */
    if (conf->endpoint == NGX_HTTP_MCP_AUTH_EP_STATUS
        || conf->endpoint == NGX_HTTP_MCP_AUTH_EP_METRICS)
    {
        what = (conf->endpoint == NGX_HTTP_MCP_AUTH_EP_STATUS) ? "status"
                                                               : "metrics";

        if (conf->protect) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"mcp_auth_endpoint %s\" and "
                               "\"mcp_auth_protect\" cannot share a location",
                               what);
            return NGX_CONF_ERROR;
        }

        if (conf->endpoint == NGX_HTTP_MCP_AUTH_EP_STATUS
            && conf->shm_zone == NULL && conf->redis == NULL)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"mcp_auth_endpoint status\" needs "
                               "\"mcp_auth_zone\" or \"mcp_auth_redis\"");
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (conf->protect
        || (conf->endpoint != MCPA_EP_AUTHORIZATION_SERVER_METADATA
            && conf->endpoint != MCPA_EP_PROTECTED_RESOURCE_METADATA))
    {
        if (conf->redis) {
            conf->store.deferred = 1;
            conf->store.confirm_writes = ngx_mcp_auth_redis_confirms(conf->redis)
                                         ? 1 : 0;

        } else if (conf->shm_zone == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"mcp_auth_zone\" or \"mcp_auth_redis\" is "
                               "required here: the endpoint or guard keeps "
                               "its state in it");
            return NGX_CONF_ERROR;

        } else {
            conf->store.data = conf->shm_zone->data;
            conf->store.get = ngx_http_mcp_auth_store_get;
            conf->store.put = ngx_http_mcp_auth_store_put;
            conf->store.del = ngx_http_mcp_auth_store_del;
            conf->store.prefetch = ngx_http_mcp_auth_store_prefetch;
        }
    }

    conf->core = ngx_http_mcp_auth_core(cf, conf);
    if (conf->core == NULL) {
        return NGX_CONF_ERROR;
    }

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_mcp_auth_module);
    amcf->users++;

    if (mcpa_config_check_use(conf->core, (int) conf->endpoint,
                              (int) conf->protect, (char *) err, sizeof(err))
        != MCPA_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    if (conf->shm_zone && mcpa_config_has_keys(conf->core)) {
        zone = conf->shm_zone->data;

        if (zone->keys == NULL) {
            zone->keys = conf->core;
        }
    }

    return NGX_CONF_OK;
}


static void
ngx_http_mcp_auth_cleanup_core(void *data)
{
    mcpa_config_free(data);
}


static char *
ngx_http_mcp_auth_endpoint(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char                      *rv;
    ngx_http_core_loc_conf_t  *clcf;

    rv = ngx_conf_set_enum_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_mcp_auth_endpoint_handler;

    return NGX_CONF_OK;
}


/* A directive taking one or more words, stored space-separated. */
static char *
ngx_http_mcp_auth_set_words(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    char              *rv;
    ngx_str_t         *field;
    ngx_conf_post_t   *post;

    field = (ngx_str_t *) (p + cmd->offset);

    if (field->data) {
        return "is duplicate";
    }

    rv = ngx_http_mcp_auth_append_args(cf, field, NULL, ' ', '\0');
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (cmd->post) {
        post = cmd->post;
        return post->post_handler(cf, post, field);
    }

    return NGX_CONF_OK;
}


/* mcp_auth_client_metadata_ports PORT...: the ports, as numbers. */
static char *
ngx_http_mcp_auth_set_ports(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    int           *port;
    ngx_int_t      n;
    ngx_str_t     *value;
    ngx_uint_t     i;
    ngx_array_t  **ports;

    ports = (ngx_array_t **) (p + cmd->offset);

    if (*ports != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    *ports = ngx_array_create(cf->pool, cf->args->nelts - 1, sizeof(int));
    if (*ports == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        n = ngx_atoi(value[i].data, value[i].len);

        if (n < 1 || n > 65535) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": \"%V\" is not a port number "
                               "(1 to 65535)", &cmd->name, &value[i]);
            return NGX_CONF_ERROR;
        }

        port = ngx_array_push(*ports);
        if (port == NULL) {
            return NGX_CONF_ERROR;
        }

        *port = (int) n;
    }

    return NGX_CONF_OK;
}


/* A string directive's check (cmd->post), on the directive's line. */
static char *
ngx_http_mcp_auth_check(ngx_conf_t *cf, void *post, void *data)
{
    ngx_http_mcp_auth_check_t *check = post;
    ngx_str_t                 *value = data;

    u_char      err[NGX_HTTP_MCP_AUTH_ERRLEN];
    ngx_str_t  *args;
    mcpa_str_t  directive, v;

    args = cf->args->elts;

    directive.data = (const char *) args[0].data;
    directive.len = args[0].len;
    v.data = (const char *) value->data;
    v.len = value->len;

    if (mcpa_check_setting(check->check, directive, v, (char *) err,
                           sizeof(err))
        != MCPA_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* A lifetime (ngx_conf_set_sec_slot): positive and within its bound. */
static char *
ngx_http_mcp_auth_check_lifetime(ngx_conf_t *cf, void *post, void *data)
{
    ngx_http_mcp_auth_lifetime_t *bound = post;
    time_t                       *sec = data;

    if (*sec <= 0 || *sec > bound->max) {
        return bound->error;
    }

    return NGX_CONF_OK;
}


/*
 * Appends to field the word kind (unless NULL) and the directive's
 * arguments, separated by sep and followed by end unless end is '\0'.
 */
static char *
ngx_http_mcp_auth_append_args(ngx_conf_t *cf, ngx_str_t *field,
    ngx_str_t *kind, u_char sep, u_char end)
{
    size_t       len;
    u_char      *d;
    ngx_str_t   *value;
    ngx_uint_t   i;

    value = cf->args->elts;

    len = field->len + (kind ? kind->len + 1 : 0) + 1;
    for (i = 1; i < cf->args->nelts; i++) {
        len += value[i].len + 1;
    }

    d = ngx_pnalloc(cf->pool, len);
    if (d == NULL) {
        return NGX_CONF_ERROR;
    }

    if (field->len) {
        ngx_memcpy(d, field->data, field->len);
    }

    field->data = d;
    d += field->len;

    if (kind) {
        d = ngx_cpymem(d, kind->data, kind->len);
    }

    for (i = 1; i < cf->args->nelts; i++) {
        if (kind || i > 1) {
            *d++ = sep;
        }
        d = ngx_cpymem(d, value[i].data, value[i].len);
    }

    if (end) {
        *d++ = end;
    }

    field->len = d - field->data;

    return NGX_CONF_OK;
}


/*
 * mcp_auth_require_claim, _require_email_domain, _scope_claim, _tool_claim,
 * _scope_description, _provider_param, _limit: each directive is one line of a
 * list, "KIND\tARG\tARG...\n" (tabs, so that a quoted value may hold
 * spaces), checked on its own line first.  A level with its own lines
 * replaces the inherited ones, like mcp_auth_tool_scope.
 */
static char *
ngx_http_mcp_auth_add_line(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                 *field = (ngx_str_t *) ((char *) conf
                                                      + cmd->offset);
    ngx_http_mcp_auth_line_t  *line = cmd->post;

    u_char      err[NGX_HTTP_MCP_AUTH_ERRLEN];
    char       *rv;
    ngx_str_t  *value, one;
    ngx_uint_t  i;
    mcpa_str_t  directive, v;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        if (ngx_strlchr(value[i].data, value[i].data + value[i].len, '\t')
            || ngx_strlchr(value[i].data, value[i].data + value[i].len, '\n'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" must not hold a tab or a line break",
                               &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    /* this line alone, checked before it joins the others */
    ngx_str_null(&one);

    rv = ngx_http_mcp_auth_append_args(cf, &one,
                                       line->kind.len ? &line->kind : NULL,
                                       '\t', '\0');
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    directive.data = (const char *) value[0].data;
    directive.len = value[0].len;
    v.data = (const char *) one.data;
    v.len = one.len;

    if (mcpa_check_setting(line->check, directive, v, (char *) err,
                           sizeof(err))
        != MCPA_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    return ngx_http_mcp_auth_append_args(cf, field,
                                         line->kind.len ? &line->kind : NULL,
                                         '\t', '\n');
}


static char *
ngx_http_mcp_auth_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mcp_auth_loc_conf_t  *alcf = conf;

    if (alcf->redis != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    return ngx_mcp_auth_redis_parse(cf, &alcf->redis);
}


/*
 * mcp_auth_tool_scope NAME SCOPE [SCOPE...] -- NAME is a tool name, or an
 * MCP method such as "tools/list"; kept as "NAME SCOPE...\n" lines for the
 * core.  A level with its own rules replaces the inherited ones.
 */
static char *
ngx_http_mcp_auth_tool_scope(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    char             *rv;
    ngx_str_t         rule;
    ngx_conf_post_t  *post;

    /* this line alone, checked before it joins the others */
    ngx_str_null(&rule);

    rv = ngx_http_mcp_auth_append_args(cf, &rule, NULL, ' ', '\0');
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    post = cmd->post;

    rv = post->post_handler(cf, post, &rule);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    return ngx_http_mcp_auth_append_args(cf, (ngx_str_t *) (p + cmd->offset),
                                         NULL, ' ', '\n');
}


static ngx_int_t
ngx_http_mcp_auth_init(ngx_conf_t *cf)
{
    ngx_uint_t                      i;
    ngx_array_t                    *configs;
    mcpa_config_t                 **c;
    ngx_http_handler_pt            *h;
    ngx_http_mcp_auth_core_t       *core;
    ngx_http_core_main_conf_t      *cmcf;
    ngx_http_mcp_auth_main_conf_t  *amcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /*
     * The guard runs in the preaccess phase, before limit_req (a static
     * module registers first, and a phase runs its handlers last first), so
     * that $mcp_auth_subject is known to limit_req_zone keys.
     */
    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_mcp_auth_guard_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_mcp_auth_log_handler;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_mcp_auth_module);

    /* the counters, in a zone of their own, once the module is used */
    if (amcf->users == 0) {
        return NGX_OK;
    }

    configs = ngx_array_create(cf->pool, amcf->cores.nelts + 1,
                               sizeof(mcpa_config_t *));
    if (configs == NULL) {
        return NGX_ERROR;
    }

    core = amcf->cores.elts;
    for (i = 0; i < amcf->cores.nelts; i++) {
        c = ngx_array_push(configs);
        if (c == NULL) {
            return NGX_ERROR;
        }

        *c = core[i].core;
    }

    amcf->metrics = ngx_http_mcp_auth_metrics_add_zone(cf, configs);
    if (amcf->metrics == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_mcp_auth_init_module(ngx_cycle_t *cycle)
{
    ngx_http_mcp_auth_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_mcp_auth_module);

    ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                  "mcp_auth: core %s, %ui configurations for %ui locations",
                  mcpa_version(), amcf ? amcf->cores.nelts : 0,
                  amcf ? amcf->users : 0);

    return NGX_OK;
}
