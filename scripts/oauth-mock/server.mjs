// Two local OAuth 2.0 servers (oauth2-mock-server: real discovery, JWKS, authorization code
// with PKCE, signed tokens), shaped like the providers member talks to:
//   google: OpenID Connect — the ID token carries sub, email, email_verified, name, nonce.
//   kakao:  OAuth 2.0 — /v2/user/me answers {id, kakao_account: {email, is_email_verified,
//           is_email_valid}} (member ignores an email Kakao marks unverified or invalid).
// The test plays the user: it adds `login_hint=<email>` to the authorize URL to choose who
// logs in (`unverified+...@` gives an unverified email, `noemail+...@` shares none).
//
//   node server.mjs <google-port> <kakao-port>
import { OAuth2Server, Events } from 'oauth2-mock-server';

const [googlePort, kakaoPort] = process.argv.slice(2).map(Number);
if (!googlePort || !kakaoPort) {
  console.error('usage: node server.mjs <google-port> <kakao-port>');
  process.exit(2);
}

// A stable numeric id per email, as Kakao's ids are numbers.
function numericId(email) {
  let h = 0;
  for (const c of email) h = (h * 31 + c.charCodeAt(0)) % 2147483647;
  return h + 1000;
}

// `unverified+x@y` logs in as x@y with email_verified=false; `noemail+x@y` shares no email.
function identity(hint) {
  const email = hint.replace(/^(unverified|noemail)\+/, '');
  return {
    email: hint.startsWith('noemail+') ? undefined : email,
    verified: !hint.startsWith('unverified+'),
    name: email.split('@')[0],
  };
}

async function provider(kind, port) {
  const server = new OAuth2Server();
  await server.issuer.keys.generate('RS256');
  const codes = new Map(); // authorization code -> email chosen at /authorize
  const tokens = new Map(); // access token -> email

  server.service.on(Events.BeforeAuthorizeRedirect, (redirect, req) => {
    const url = new URL(req.url, `http://127.0.0.1:${port}`);
    const email = url.searchParams.get('login_hint') || 'someone@example.com';
    const code = redirect.url.searchParams.get('code');
    if (code) codes.set(code, email);
  });
  server.service.on(Events.BeforeTokenSigning, (token, req) => {
    const email = codes.get(req.body.code) || 'someone@example.com';
    const who = identity(email);
    token.payload.sub = kind === 'kakao' ? String(numericId(email)) : `google-${numericId(email)}`;
    if (who.email) {
      token.payload.email = who.email;
      token.payload.email_verified = who.verified;
    }
    token.payload.name = who.name;
    token.payload.login_hint = email;
  });
  server.service.on(Events.BeforeResponse, (response, req) => {
    const email = codes.get(req.body.code);
    if (email && response.body.access_token) tokens.set(response.body.access_token, email);
  });
  server.service.on(Events.BeforeUserinfo, (response, req) => {
    const auth = req.headers.authorization || '';
    const email = tokens.get(auth.replace(/^Bearer\s+/i, ''));
    if (!email) {
      response.statusCode = 401;
      response.body = { error: 'invalid_token' };
      return;
    }
    const who = identity(email);
    if (kind === 'kakao') {
      response.body = {
        id: numericId(email),
        kakao_account: {
          email: who.email,
          is_email_verified: who.email ? who.verified : undefined,
          is_email_valid: who.email ? true : undefined,
          profile: { nickname: who.name },
        },
      };
    } else {
      response.body = { sub: `google-${numericId(email)}`, email: who.email, email_verified: who.verified, name: who.name };
    }
  });
  await server.start(port, '127.0.0.1');
  console.log(`${kind} listening on ${server.issuer.url}`);
  return server;
}

const servers = [await provider('google', googlePort), await provider('kakao', kakaoPort)];
const stop = async () => {
  await Promise.all(servers.map((s) => s.stop()));
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
