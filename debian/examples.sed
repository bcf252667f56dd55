# The examples as installed by libnginx-mod-http-mcp-auth (debian/rules):
# Debian's nginx user, the module loaded through /etc/nginx/modules-enabled,
# the state files in a folder the workers may write (postinst makes it).
/^load_module \/usr\/lib\/nginx\/modules\/ngx_http_mcp_auth_module\.so;$/c\
# Debian's nginx: the workers run as www-data (as in Debian's own nginx.conf),\
# and the module is loaded from /etc/nginx/modules-enabled, where the package\
# libnginx-mod-http-mcp-auth enables it (50-mod-http-mcp-auth.conf).\
user www-data;\
include /etc/nginx/modules-enabled/*.conf;
s|state=/var/lib/nginx/|state=/var/lib/nginx/mcp-auth/|
