// The user's browser, over plain HTTP: follows redirects one at a time with a
// cookie jar, approves the gateway's consent page and logs in at the OpenID
// provider, until a redirect leaves for the MCP client's redirect_uri.
//
//   const url = await browseToRedirect(authorizationUrl, {
//     redirectPrefix: 'http://127.0.0.1:33419/callback', login: 'demo', password,
//     onPage: (kind, url) => ...  // 'consent' | 'login' | 'return_link'
//     decision: 'allow' | 'deny'   // what the user clicks on the consent page
//   });
//   new URL(url).searchParams.get('code')
//
// Cookies are kept per host name (browsers do not separate ports), with path
// matching; Secure and SameSite are irrelevant on loopback http.

export class CookieJar {
  constructor() { this.cookies = []; }

  store(url, response) {
    const u = new URL(url);
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = u.pathname.replace(/\/[^/]*$/, '') || '/';
      let expired = false;
      for (const a of attrs) {
        const [k, v = ''] = a.split('=');
        const key = k.trim().toLowerCase();
        if (key === 'path') path = v.trim() || '/';
        if (key === 'max-age' && Number(v) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v) < Date.now()) expired = true;
      }
      this.cookies = this.cookies.filter(c => !(c.host === u.hostname && c.name === name && c.path === path));
      if (!expired) this.cookies.push({ host: u.hostname, name, value, path });
    }
  }

  header(url) {
    const u = new URL(url);
    return this.cookies
      .filter(c => c.host === u.hostname &&
        (u.pathname === c.path || u.pathname.startsWith(c.path.endsWith('/') ? c.path : c.path + '/')))
      .map(c => `${c.name}=${c.value}`).join('; ');
  }
}

function decodeEntities(s) {
  return s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&#x27;/g, "'")
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

function attrsOf(tag) {
  const out = {};
  for (const m of tag.matchAll(/([a-zA-Z_:-]+)\s*=\s*("([^"]*)"|'([^']*)'|([^\s>]+))/g))
    out[m[1].toLowerCase()] = decodeEntities(m[3] ?? m[4] ?? m[5] ?? '');
  return out;
}

/** Every <form> of a page: {action, method, fields, buttons}. */
export function parseForms(html) {
  const forms = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const a = attrsOf(m[1]);
    const form = { action: a.action ?? '', method: (a.method ?? 'get').toLowerCase(), fields: {}, buttons: [] };
    for (const t of m[2].matchAll(/<(input|button)\b([^>]*)>/gi)) {
      const ta = attrsOf(t[2]);
      const type = (ta.type ?? (t[1].toLowerCase() === 'button' ? 'submit' : 'text')).toLowerCase();
      if (type === 'submit') form.buttons.push({ name: ta.name, value: ta.value });
      else if (type === 'checkbox') continue;
      else if (ta.name) form.fields[ta.name] = ta.value ?? '';
    }
    forms.push(form);
  }
  return forms;
}

/** The href of a page's "Return to <app>" link (the gateway's report of an
 * outcome it will not redirect to by itself), or null. */
export function returnLink(html) {
  for (const m of html.matchAll(/<a\b([^>]*)>/gi)) {
    const a = attrsOf(m[1]);
    if ((a.class ?? '').split(/\s+/).includes('return')) return a.href ?? null;
  }
  return null;
}

export async function browseToRedirect(startUrl, { redirectPrefix, login, password, onPage, decision = 'allow',
                                                   maxSteps = 30 }) {
  const jar = new CookieJar();
  const request = async (url, init = {}) => {
    const headers = new Headers(init.headers ?? {});
    const cookie = jar.header(url);
    if (cookie) headers.set('cookie', cookie);
    headers.set('accept', 'text/html,application/xhtml+xml,*/*');
    const r = await fetch(url, { ...init, headers, redirect: 'manual' });
    jar.store(url, r);
    return r;
  };
  let url = startUrl;
  let r = await request(url);
  for (let i = 0; i < maxSteps; i++) {
    if (r.status >= 300 && r.status < 400) {
      const next = new URL(r.headers.get('location'), url).href;
      await r.arrayBuffer();
      if (next.startsWith(redirectPrefix)) return next;
      url = next;
      r = await request(url);
      continue;
    }
    const html = await r.text();
    // A page that reports an outcome for the application (a denial, or an
    // error before the user approved it) links back to it: the user follows
    // the link, as a person would after reading the page.
    const link = returnLink(html);
    if (link && new URL(link, url).href.startsWith(redirectPrefix)) {
      onPage?.('return_link', url);
      return new URL(link, url).href;
    }
    if (r.status !== 200) throw new Error(`browser stuck at ${url}: HTTP ${r.status} ${html.slice(0, 300)}`);
    const forms = parseForms(html);
    const consent = forms.find(f => f.buttons.some(b => b.name === 'decision'));
    const loginForm = forms.find(f => 'password' in f.fields);
    let form, data;
    if (consent) {
      onPage?.('consent', url);
      form = consent;
      data = { ...consent.fields, decision };
    } else if (loginForm) {
      onPage?.('login', url);
      form = loginForm;
      data = { ...loginForm.fields, login, password };
    } else {
      throw new Error(`no form to submit at ${url}: ${html.slice(0, 300)}`);
    }
    const action = new URL(form.action || url, url).href;
    r = await request(action, {
      method: 'POST',
      body: new URLSearchParams(data).toString(),
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        origin: new URL(url).origin,
        'sec-fetch-site': 'same-origin',
      },
    });
    url = action;
  }
  throw new Error('too many steps in the browser');
}
