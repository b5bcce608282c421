// A real OpenID provider for the SSO tests: `oidc-provider` (npm, certified), with one
// confidential client and the test accounts, on a free loopback port.
//
//   node oidc_provider.mjs <dir holding node_modules/oidc-provider>
//
// Environment: OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI and OIDC_ACCOUNTS,
// a JSON object `{account_id: {email, email_verified, name, groups}}`. Its development
// interactions give the plain login and consent forms the test submits over HTTP (any
// password is accepted). Prints `listening <port>` once it answers.

import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const moduleDir = process.argv[2];
if (!moduleDir) {
  console.error('usage: node oidc_provider.mjs <dir holding node_modules/oidc-provider>');
  process.exit(2);
}
const entry = path.join(moduleDir, 'node_modules', 'oidc-provider', 'lib', 'index.js');
const { default: Provider } = await import(pathToFileURL(entry).href);

const accounts = JSON.parse(process.env.OIDC_ACCOUNTS ?? '{}');
const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [
    {
      client_id: process.env.OIDC_CLIENT_ID,
      client_secret: process.env.OIDC_CLIENT_SECRET,
      redirect_uris: [process.env.OIDC_REDIRECT_URI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  // The e-mail and groups claims go into the ID token itself, not only userinfo.
  conformIdTokenClaims: false,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'groups'],
  },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  cookies: { keys: ['fluxolab-sso-test-cookie-key'] },
  async findAccount(_ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...account }) };
  },
});
server.on('request', provider.callback());
console.log(`listening ${port}`);

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
