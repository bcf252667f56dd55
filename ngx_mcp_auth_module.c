/*
 * ngx_mcp_auth_module -- an OAuth 2.1 authorization server and guard for
 * remote MCP servers, as an nginx dynamic module.
 *
 * This file is the nginx glue only: directives, configuration merging,
 * request plumbing.  Every decision is made by the C++ core behind
 * src/mcp_auth.h, which never throws across that boundary.
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


static ngx_int_t ngx_http_mcp_auth_endpoint_handler(ngx_http_request_t *r);
static void ngx_http_mcp_auth_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_mcp_auth_serve(ngx_http_request_t *r);
static void ngx_http_mcp_auth_store_done(void *data, int status,
    ngx_str_t *value);
static void ngx_http_mcp_auth_store_cleanup(void *data);
static ngx_int_t ngx_http_mcp_auth_respond(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx, mcpa_response_t *resp);


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


static ngx_int_t
ngx_http_mcp_auth_endpoint_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_http_mcp_auth_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    if (alcf->endpoint == NGX_HTTP_MCP_AUTH_EP_STATUS) {
        return ngx_http_mcp_auth_status_handler(r);
    }

    if (r->method & (NGX_HTTP_POST)) {
        rc = ngx_http_read_client_request_body(r,
                                               ngx_http_mcp_auth_body_handler);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_mcp_auth_serve(r);
}


static void
ngx_http_mcp_auth_body_handler(ngx_http_request_t *r)
{
    ngx_http_finalize_request(r, ngx_http_mcp_auth_serve(r));
}


static ngx_int_t
ngx_http_mcp_auth_serve(ngx_http_request_t *r)
{
    ngx_str_t                      body;
    mcpa_request_t                 req;
    ngx_http_mcp_auth_ctx_t       *ctx;
    ngx_http_mcp_auth_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    if (r->headers_in.content_length_n > (off_t) alcf->max_body) {
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    if (ngx_http_mcp_auth_flatten_body(r, &body) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (body.len > alcf->max_body) {
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    ngx_memzero(&req, sizeof(mcpa_request_t));

    req.endpoint = (mcpa_endpoint_e) alcf->endpoint;
    req.method.data = (const char *) r->method_name.data;
    req.method.len = r->method_name.len;
    req.uri.data = (const char *) r->uri.data;
    req.uri.len = r->uri.len;
    req.args.data = (const char *) r->args.data;
    req.args.len = r->args.len;
    req.body.data = (const char *) body.data;
    req.body.len = body.len;
    req.now = (int64_t) ngx_time();

    ngx_http_mcp_auth_header_str(r->headers_in.content_type, &req.content_type);
    ngx_http_mcp_auth_header_str(r->headers_in.authorization,
                                 &req.authorization);

    /* nginx 1.23+ links repeated Cookie headers; 1.22 keeps an array */
#if (nginx_version >= 1023000)
    ngx_http_mcp_auth_header_str(r->headers_in.cookie, &req.cookie);
#else
    if (r->headers_in.cookies.nelts) {
        ngx_table_elt_t **c = r->headers_in.cookies.elts;
        ngx_http_mcp_auth_header_str(c[0], &req.cookie);
    }
#endif

    {
        ngx_list_part_t  *part = &r->headers_in.headers.part;
        ngx_table_elt_t  *h = part->elts;
        ngx_uint_t        i;

        for (i = 0; /* void */; i++) {
            if (i >= part->nelts) {
                if (part->next == NULL) {
                    break;
                }
                part = part->next;
                h = part->elts;
                i = 0;
            }

            if (h[i].key.len == sizeof("Sec-Fetch-Site") - 1
                && ngx_strncasecmp(h[i].key.data, (u_char *) "Sec-Fetch-Site",
                                   h[i].key.len) == 0)
            {
                ngx_http_mcp_auth_header_str(&h[i], &req.sec_fetch_site);

            } else if (req.origin.data == NULL
                       && h[i].key.len == sizeof("Origin") - 1
                       && ngx_strncasecmp(h[i].key.data, (u_char *) "Origin",
                                          h[i].key.len) == 0)
            {
                ngx_http_mcp_auth_header_str(&h[i], &req.origin);
            }
        }
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_mcp_auth_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->fetch.req = req;
    ngx_http_set_ctx(r, ctx, ngx_http_mcp_auth_module);

    return ngx_http_mcp_auth_run(r, ctx);
}


/*
 * Runs the core for an endpoint request: mcpa_handle(), or mcpa_resume()
 * once a fetch has answered; with a deferred store, again after each store
 * operation, until there is something to send or to fetch.
 */
ngx_int_t
ngx_http_mcp_auth_run(ngx_http_request_t *r, ngx_http_mcp_auth_ctx_t *ctx)
{
    int                            rc;
    ngx_int_t                      n;
    mcpa_str_t                     cont, answer;
    mcpa_response_t                resp;
    ngx_http_mcp_auth_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    for ( ;; ) {
        ngx_http_mcp_auth_replay(ctx, &ctx->fetch.req.replay);

        if (ctx->store.resuming) {
            cont.data = (const char *) ctx->fetch.continuation.data;
            cont.len = ctx->fetch.continuation.len;
            answer.data = (const char *) ctx->fetch.answer.data;
            answer.len = ctx->fetch.answer.len;

            rc = mcpa_resume(alcf->core, &alcf->store, &ctx->fetch.req, cont,
                             (int) ctx->fetch.answer_status, answer, &resp);

        } else {
            rc = mcpa_handle(alcf->core, &alcf->store, &ctx->fetch.req, &resp);
        }

        if (rc != MCPA_OK) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "mcp_auth: internal error in the core");
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (resp.store_op.op == MCPA_OP_NONE) {
            /* done with this run's replay: a later resume starts afresh */
            ctx->store.replay.len = 0;
            return ngx_http_mcp_auth_respond(r, ctx, &resp);
        }

        n = ngx_http_mcp_auth_store(r, ctx, &resp, 0);
        mcpa_response_free(&resp);

        if (n != NGX_DECLINED) {
            return n;
        }

        /* Redis cannot be asked now: the core answers so at once */
    }
}


/*
 * Sends the operation a deferred store's response asks for.  NGX_DONE: the
 * request waits for Redis (ngx_http_mcp_auth_store_done); NGX_DECLINED:
 * Redis cannot be asked now, and that answer (MCPA_UNAVAILABLE) is in ctx.
 */
ngx_int_t
ngx_http_mcp_auth_store(ngx_http_request_t *r, ngx_http_mcp_auth_ctx_t *ctx,
    mcpa_response_t *resp, ngx_uint_t access)
{
    ngx_http_mcp_auth_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    /* a request makes a handful of operations; never loop */
    if (++ctx->store.ops > 64 || alcf->redis == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mcp_auth: too many store operations for one request");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_mcp_auth_copy_str(r->pool, &ctx->store.replay, &resp->replay)
        != NGX_OK
        || ngx_http_mcp_auth_store_cleanup_add(r, ctx) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->store.access = access ? 1 : 0;
    ctx->store.cmd = ngx_mcp_auth_redis_run(alcf->redis, &resp->store_op,
                                            ngx_http_mcp_auth_store_done, r,
                                            r->connection->log);

    if (ctx->store.cmd == NULL) {
        ctx->store.replay_status = MCPA_UNAVAILABLE;
        ctx->store.replay_value.len = 0;
        return NGX_DECLINED;
    }

    ctx->store.waiting = 1;
    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_mcp_auth_store_done(void *data, int status, ngx_str_t *value)
{
    ngx_http_request_t  *r = data;

    ngx_connection_t         *c;
    ngx_http_mcp_auth_ctx_t  *ctx;

    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_mcp_auth_module);

    ctx->store.cmd = NULL;
    ctx->store.waiting = 0;
    ctx->store.replay_status = status;
    ctx->store.replay_value.len = 0;

    if (value && value->len) {
        ctx->store.replay_value.data = ngx_pnalloc(r->pool, value->len);

        if (ctx->store.replay_value.data == NULL) {
            ctx->store.replay_status = MCPA_UNAVAILABLE;

        } else {
            ngx_memcpy(ctx->store.replay_value.data, value->data, value->len);
            ctx->store.replay_value.len = value->len;
        }
    }

    if (ctx->store.access) {
        /* balances ngx_http_mcp_auth_store(); the guard runs again */
        r->main->count--;
        ngx_http_core_run_phases(r);

    } else {
        ngx_http_finalize_request(r, ngx_http_mcp_auth_run(r, ctx));
    }

    ngx_http_run_posted_requests(c);
}


ngx_int_t
ngx_http_mcp_auth_store_cleanup_add(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx)
{
    ngx_pool_cleanup_t  *cln;

    if (ctx->store.cleanup) {
        return NGX_OK;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_mcp_auth_store_cleanup;
    cln->data = ctx;
    ctx->store.cleanup = 1;

    return NGX_OK;
}


/* The request is gone: Redis's answer, when it comes, goes nowhere. */
static void
ngx_http_mcp_auth_store_cleanup(void *data)
{
    ngx_http_mcp_auth_ctx_t  *ctx = data;

    if (ctx->store.cmd) {
        ngx_mcp_auth_redis_cancel(ctx->store.cmd);
        ctx->store.cmd = NULL;
    }
}


/* What the next core call is told of the previous store operation. */
void
ngx_http_mcp_auth_replay(ngx_http_mcp_auth_ctx_t *ctx, mcpa_replay_t *replay)
{
    replay->log.data = (const char *) ctx->store.replay.data;
    replay->log.len = ctx->store.replay.len;
    replay->status = ctx->store.replay_status;
    replay->value.data = (const char *) ctx->store.replay_value.data;
    replay->value.len = ctx->store.replay_value.len;
}


/*
 * Either sends the core's response, or starts the call to the provider it
 * asks for; in the latter case returns NGX_DONE and the request continues in
 * ngx_http_mcp_auth_resume_handler().
 */
static ngx_int_t
ngx_http_mcp_auth_respond(ngx_http_request_t *r, ngx_http_mcp_auth_ctx_t *ctx,
    mcpa_response_t *resp)
{
    ngx_int_t  rc;

    if (resp->fetch != MCPA_FETCH_NONE) {
        rc = ngx_http_mcp_auth_fetch(r, ctx, resp, 0);
        mcpa_response_free(resp);
        return rc;
    }

    rc = ngx_http_mcp_auth_send(r, resp);

    mcpa_response_free(resp);

    return rc;
}


ngx_int_t
ngx_http_mcp_auth_copy_str(ngx_pool_t *pool, ngx_str_t *dst, mcpa_str_t *src)
{
    dst->len = src->len;

    if (src->len == 0) {
        dst->data = NULL;
        return NGX_OK;
    }

    dst->data = ngx_pnalloc(pool, src->len);
    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, src->data, src->len);

    return NGX_OK;
}


/* Copies the core's response into the request pool and sends it. */
ngx_int_t
ngx_http_mcp_auth_send(ngx_http_request_t *r, mcpa_response_t *resp)
{
    size_t            i;
    ngx_buf_t        *b;
    ngx_int_t         rc;
    ngx_chain_t       out;
    ngx_table_elt_t  *h;
    mcpa_header_t    *rh;

    r->headers_out.status = resp->status;
    r->headers_out.content_length_n = resp->body.len;

    for (i = 0; i < resp->nheaders; i++) {
        rh = &resp->headers[i];

        if (rh->name.len == sizeof("Content-Type") - 1
            && ngx_strncasecmp((u_char *) rh->name.data,
                               (u_char *) "Content-Type", rh->name.len) == 0)
        {
            r->headers_out.content_type.data = ngx_pnalloc(r->pool,
                                                           rh->value.len);
            if (r->headers_out.content_type.data == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            ngx_memcpy(r->headers_out.content_type.data, rh->value.data,
                       rh->value.len);
            r->headers_out.content_type.len = rh->value.len;
            r->headers_out.content_type_len = rh->value.len;
            continue;
        }

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        h->key.data = ngx_pnalloc(r->pool, rh->name.len + rh->value.len);
        if (h->key.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(h->key.data, rh->name.data, rh->name.len);
        h->key.len = rh->name.len;
        h->value.data = h->key.data + rh->name.len;
        ngx_memcpy(h->value.data, rh->value.data, rh->value.len);
        h->value.len = rh->value.len;

        if (h->key.len == sizeof("Location") - 1
            && ngx_strncasecmp(h->key.data, (u_char *) "Location",
                               h->key.len) == 0)
        {
            /* keep nginx from rewriting our absolute Location */
            r->headers_out.location = h;
        }
    }

    if (resp->body.len == 0 || r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_create_temp_buf(r->pool, resp->body.len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, resp->body.data, resp->body.len);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* The request body as one contiguous string (small: bounded by max_body). */
ngx_int_t
ngx_http_mcp_auth_flatten_body(ngx_http_request_t *r, ngx_str_t *body)
{
    size_t        len;
    u_char       *p;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    body->data = NULL;
    body->len = 0;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;
    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        len += b->in_file ? (size_t) (b->file_last - b->file_pos)
                          : (size_t) (b->last - b->pos);
    }

    if (len == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    body->len = len;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, (size_t) (b->file_last - b->file_pos),
                              b->file_pos);
            if (n == NGX_ERROR) {
                return NGX_ERROR;
            }
            p += n;

        } else {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    return NGX_OK;
}


void
ngx_http_mcp_auth_header_str(ngx_table_elt_t *h, mcpa_str_t *s)
{
    if (h == NULL) {
        return;
    }

    s->data = (const char *) h->value.data;
    s->len = h->value.len;
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
