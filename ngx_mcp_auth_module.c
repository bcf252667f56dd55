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


typedef struct {
    const char               *name;            /* core setting name */
    size_t                    offset;
} ngx_http_mcp_auth_setting_t;


static ngx_int_t ngx_http_mcp_auth_init(ngx_conf_t *cf);

static ngx_int_t ngx_http_mcp_auth_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_mcp_auth_request_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_mcp_auth_fetch_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static void *ngx_http_mcp_auth_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_mcp_auth_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
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
    u_char end);
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
    { ngx_string("status"), NGX_HTTP_MCP_AUTH_EP_STATUS },
    { ngx_null_string, 0 }
};


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
      NULL },

    { ngx_string("mcp_auth_resource"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, resource),
      NULL },

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
      NULL },

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
      NULL },

    { ngx_string("mcp_auth_token_path"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, token_path),
      NULL },

    { ngx_string("mcp_auth_registration_path"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, registration_path),
      NULL },

    { ngx_string("mcp_auth_revocation_path"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, revocation_path),
      NULL },

    { ngx_string("mcp_auth_consent_path"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, consent_path),
      NULL },

    { ngx_string("mcp_auth_callback_path"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, callback_path),
      NULL },

    { ngx_string("mcp_auth_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, key_file),
      NULL },

    { ngx_string("mcp_auth_provider_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_issuer),
      NULL },

    { ngx_string("mcp_auth_provider_authorization_endpoint"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_authorization_endpoint),
      NULL },

    { ngx_string("mcp_auth_provider_token_endpoint"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_token_endpoint),
      NULL },

    { ngx_string("mcp_auth_provider_client_id"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_client_id),
      NULL },

    { ngx_string("mcp_auth_provider_client_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_client_secret_file),
      NULL },

    { ngx_string("mcp_auth_provider_client_auth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_client_auth),
      NULL },

    { ngx_string("mcp_auth_provider_private_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_private_key_file),
      NULL },

    { ngx_string("mcp_auth_provider_key_id"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_key_id),
      NULL },

    { ngx_string("mcp_auth_provider_certificate_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_certificate_file),
      NULL },

    { ngx_string("mcp_auth_provider_scopes"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_mcp_auth_set_words,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_scopes),
      NULL },

    { ngx_string("mcp_auth_access_token_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, access_token_ttl),
      NULL },

    { ngx_string("mcp_auth_refresh_token_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, refresh_token_ttl),
      NULL },

    { ngx_string("mcp_auth_session_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, session_ttl),
      NULL },

    { ngx_string("mcp_auth_code_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, code_ttl),
      NULL },

    { ngx_string("mcp_auth_login_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, login_ttl),
      NULL },

    { ngx_string("mcp_auth_client_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, client_ttl),
      NULL },

    { ngx_string("mcp_auth_consent_remember"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, consent_remember),
      NULL },

    { ngx_string("mcp_auth_secure_cookies"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
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
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, pass_provider_token),
      NULL },

    { ngx_string("mcp_auth_identity_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, identity_key_file),
      NULL },

    { ngx_string("mcp_auth_identity_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, identity_issuer),
      NULL },

    { ngx_string("mcp_auth_identity_audience"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, identity_audience),
      NULL },

    { ngx_string("mcp_auth_tool_scope"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_mcp_auth_tool_scope,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, tool_scopes),
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
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, client_metadata_documents),
      NULL },

    { ngx_string("mcp_auth_client_metadata_allow_private"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcp_auth_loc_conf_t, client_metadata_allow_private),
      NULL },

    { ngx_string("mcp_auth_client_metadata_ports"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_mcp_auth_set_words,
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

    NULL,                                  /* create main configuration */
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

      ngx_http_null_variable
};


/* Settings the core receives by name when it is built for a location. */
static ngx_http_mcp_auth_setting_t  ngx_http_mcp_auth_settings[] = {
    { "issuer", offsetof(ngx_http_mcp_auth_loc_conf_t, issuer) },
    { "resource", offsetof(ngx_http_mcp_auth_loc_conf_t, resource) },
    { "resource_name", offsetof(ngx_http_mcp_auth_loc_conf_t, resource_name) },
    { "scopes", offsetof(ngx_http_mcp_auth_loc_conf_t, scopes) },
    { "cors_origins", offsetof(ngx_http_mcp_auth_loc_conf_t, cors_origins) },
    { "authorization_path",
      offsetof(ngx_http_mcp_auth_loc_conf_t, authorization_path) },
    { "token_path", offsetof(ngx_http_mcp_auth_loc_conf_t, token_path) },
    { "registration_path",
      offsetof(ngx_http_mcp_auth_loc_conf_t, registration_path) },
    { "revocation_path",
      offsetof(ngx_http_mcp_auth_loc_conf_t, revocation_path) },
    { "consent_path", offsetof(ngx_http_mcp_auth_loc_conf_t, consent_path) },
    { "callback_path", offsetof(ngx_http_mcp_auth_loc_conf_t, callback_path) },
    { "key_file",
      offsetof(ngx_http_mcp_auth_loc_conf_t, key_file) },
    { "provider_issuer",
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_issuer) },
    { "provider_authorization_endpoint",
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_authorization_endpoint) },
    { "provider_token_endpoint",
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_token_endpoint) },
    { "provider_client_id",
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_client_id) },
    { "provider_client_secret_file",
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_client_secret_file) },
    { "provider_client_auth",
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_client_auth) },
    { "provider_private_key_file",
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_private_key_file) },
    { "provider_key_id",
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_key_id) },
    { "provider_certificate_file",
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_certificate_file) },
    { "provider_scopes",
      offsetof(ngx_http_mcp_auth_loc_conf_t, provider_scopes) },
    { "access_token_ttl",
      offsetof(ngx_http_mcp_auth_loc_conf_t, access_token_ttl) },
    { "refresh_token_ttl",
      offsetof(ngx_http_mcp_auth_loc_conf_t, refresh_token_ttl) },
    { "session_ttl",
      offsetof(ngx_http_mcp_auth_loc_conf_t, session_ttl) },
    { "code_ttl",
      offsetof(ngx_http_mcp_auth_loc_conf_t, code_ttl) },
    { "login_ttl",
      offsetof(ngx_http_mcp_auth_loc_conf_t, login_ttl) },
    { "client_ttl",
      offsetof(ngx_http_mcp_auth_loc_conf_t, client_ttl) },
    { "consent_remember",
      offsetof(ngx_http_mcp_auth_loc_conf_t, consent_remember) },
    { "secure_cookies",
      offsetof(ngx_http_mcp_auth_loc_conf_t, secure_cookies) },
    { "pass_provider_token",
      offsetof(ngx_http_mcp_auth_loc_conf_t, pass_provider_token) },
    { "client_metadata_documents",
      offsetof(ngx_http_mcp_auth_loc_conf_t, client_metadata_documents) },
    { "client_metadata_allow_private",
      offsetof(ngx_http_mcp_auth_loc_conf_t, client_metadata_allow_private) },
    { "client_metadata_ports",
      offsetof(ngx_http_mcp_auth_loc_conf_t, client_metadata_ports) },
    { "identity_key_file",
      offsetof(ngx_http_mcp_auth_loc_conf_t, identity_key_file) },
    { "identity_issuer",
      offsetof(ngx_http_mcp_auth_loc_conf_t, identity_issuer) },
    { "identity_audience",
      offsetof(ngx_http_mcp_auth_loc_conf_t, identity_audience) },
    { "tool_scopes", offsetof(ngx_http_mcp_auth_loc_conf_t, tool_scopes) },
    { NULL, 0 }
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


/* $mcp_auth_fetch_*: what the parent request is sending to the provider. */
static ngx_int_t
ngx_http_mcp_auth_fetch_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                *s;
    ngx_http_mcp_auth_ctx_t  *ctx;

    ctx = r->parent ? ngx_http_get_module_ctx(r->parent,
                                              ngx_http_mcp_auth_module)
                    : NULL;

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((u_char *) ctx + data);

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = s->data;

    return NGX_OK;
}


/* $mcp_auth_subject and friends: what the guard established. */
static ngx_int_t
ngx_http_mcp_auth_request_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                *s;
    ngx_http_mcp_auth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_mcp_auth_module);

    if (ctx == NULL || !ctx->guard.done) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((u_char *) ctx + data);

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = s->data;

    return NGX_OK;
}


/* --- configuration ------------------------------------------------------- */

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
    conf->max_body = NGX_CONF_UNSET_SIZE;
    conf->shm_zone = NGX_CONF_UNSET_PTR;
    conf->redis = NGX_CONF_UNSET_PTR;
    conf->protect = NGX_CONF_UNSET;
    conf->stream_check = NGX_CONF_UNSET_MSEC;
    conf->peek_size = NGX_CONF_UNSET_SIZE;

    return conf;
}


static char *
ngx_http_mcp_auth_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_mcp_auth_loc_conf_t *prev = parent;
    ngx_http_mcp_auth_loc_conf_t *conf = child;

    u_char                        err[NGX_HTTP_MCP_AUTH_ERRLEN];
    u_char                        cache[NGX_TIME_T_LEN];
    ngx_str_t                    *value, *prev_value;
    mcpa_str_t                    v;
    ngx_conf_enum_t              *e;
    ngx_pool_cleanup_t           *cln;
    ngx_http_mcp_auth_zone_t     *zone;
    ngx_http_mcp_auth_setting_t  *s;

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
    ngx_conf_merge_str_value(conf->provider_token_location,
                             prev->provider_token_location, "");
    ngx_conf_merge_str_value(conf->provider_jwks_location,
                             prev->provider_jwks_location, "");
    ngx_conf_merge_str_value(conf->client_metadata_location,
                             prev->client_metadata_location, "");

    for (s = ngx_http_mcp_auth_settings; s->name; s++) {
        value = (ngx_str_t *) ((u_char *) conf + s->offset);
        prev_value = (ngx_str_t *) ((u_char *) prev + s->offset);
        ngx_conf_merge_str_value((*value), (*prev_value), "");
    }

    if (conf->endpoint == MCPA_EP_NONE && !conf->protect) {
        return NGX_CONF_OK;
    }

    if (conf->endpoint == NGX_HTTP_MCP_AUTH_EP_STATUS) {
        if (conf->shm_zone == NULL && conf->redis == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"mcp_auth_endpoint status\" needs "
                               "\"mcp_auth_zone\" or \"mcp_auth_redis\"");
            return NGX_CONF_ERROR;
        }

        if (conf->protect) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"mcp_auth_endpoint status\" and "
                               "\"mcp_auth_protect\" cannot share a location");
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

    conf->core = mcpa_config_new();
    if (conf->core == NULL) {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        mcpa_config_free(conf->core);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_mcp_auth_cleanup_core;
    cln->data = conf->core;

    for (s = ngx_http_mcp_auth_settings; s->name; s++) {
        value = (ngx_str_t *) ((u_char *) conf + s->offset);

        if (value->len == 0) {
            continue;
        }

        v.data = (const char *) value->data;
        v.len = value->len;

        if (mcpa_config_set(conf->core, s->name, v, (char *) err, sizeof(err))
            != MCPA_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
            return NGX_CONF_ERROR;
        }
    }

    if (conf->protect) {
        v.data = "on";
        v.len = 2;

        if (mcpa_config_set(conf->core, "protect", v, (char *) err,
                            sizeof(err))
            != MCPA_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
            return NGX_CONF_ERROR;
        }
    }

    if (conf->redis && ngx_mcp_auth_redis_cache(conf->redis)) {
        v.data = (const char *) cache;
        v.len = ngx_sprintf(cache, "%T", ngx_mcp_auth_redis_cache(conf->redis))
                - cache;

        if (mcpa_config_set(conf->core, "session_cache", v, (char *) err,
                            sizeof(err))
            != MCPA_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
            return NGX_CONF_ERROR;
        }
    }

    if (conf->client_metadata_location.len) {
        v.data = "on";
        v.len = 2;

        if (mcpa_config_set(conf->core, "client_metadata_fetch", v,
                            (char *) err, sizeof(err))
            != MCPA_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
            return NGX_CONF_ERROR;
        }
    }

    if (conf->endpoint != MCPA_EP_NONE) {
        for (e = ngx_http_mcp_auth_endpoints; e->name.len; e++) {
            if (e->value == conf->endpoint) {
                v.data = (const char *) e->name.data;
                v.len = e->name.len;
                break;
            }
        }

        if (mcpa_config_set(conf->core, "endpoint", v, (char *) err,
                            sizeof(err))
            != MCPA_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
            return NGX_CONF_ERROR;
        }
    }

    if (mcpa_config_finish(conf->core, (char *) err, sizeof(err)) != MCPA_OK) {
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

    ngx_str_t  *field;

    field = (ngx_str_t *) (p + cmd->offset);

    if (field->data) {
        return "is duplicate";
    }

    return ngx_http_mcp_auth_append_args(cf, field, '\0');
}


/*
 * Appends the directive's arguments to field, separated by spaces and
 * followed by end unless end is '\0'.
 */
static char *
ngx_http_mcp_auth_append_args(ngx_conf_t *cf, ngx_str_t *field, u_char end)
{
    size_t       len;
    u_char      *d;
    ngx_str_t   *value;
    ngx_uint_t   i;

    value = cf->args->elts;

    len = field->len;
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

    for (i = 1; i < cf->args->nelts; i++) {
        if (i > 1) {
            *d++ = ' ';
        }
        d = ngx_cpymem(d, value[i].data, value[i].len);
    }

    if (end) {
        *d++ = end;
    }

    field->len = d - field->data;

    return NGX_CONF_OK;
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

    return ngx_http_mcp_auth_append_args(cf, (ngx_str_t *) (p + cmd->offset),
                                         '\n');
}


static ngx_int_t
ngx_http_mcp_auth_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_mcp_auth_access_handler;

    return NGX_OK;
}


static ngx_int_t
ngx_http_mcp_auth_init_module(ngx_cycle_t *cycle)
{
    ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0, "mcp_auth: core %s",
                  mcpa_version());

    return NGX_OK;
}
