// A Cloudflare Worker that publishes to NATS through authsvc, identified by an
// Access service token (docs/identity.md, "Cloudflare Access and Workers").
//
// 1. Exchange the service token (CF_CLIENT_ID / CF_CLIENT_SECRET, Worker secrets) for an
//    Access application JWT at TOKEN_URL: an endpoint behind an Access application that
//    echoes the Cf-Access-Jwt-Assertion header it received.
// 2. Open a WebSocket to nats-server's WebSocket listener (NATS_WS_URL, https:// or http://)
//    and send that JWT as the CONNECT auth_token; authsvc verifies it and mints the grant.
// 3. Publish, then PING: PONG means every earlier line was accepted; -ERR says why not.
//
// POST /?subject=SUBJECT publishes the request body (GET publishes "ping") and answers JSON
// {"ok": true} or {"ok": false, "error": "..."}. The token is never logged or returned.
// Anyone who can call this Worker publishes with its grant: keep its route private (e.g.
// behind Access as well) or call publish() from your own handler, queue or cron instead.

const CRLF = "\r\n";
// A publish subject: dot-separated tokens of printable ASCII, no wildcard. It goes into a
// protocol line, so a space, CR or LF in it would add a reply subject or a command.
const TOKEN = "[\\x21-\\x29\\x2b-\\x2d\\x2f-\\x3d\\x3f-\\x7e]+"; // no space . * >
const SUBJECT = new RegExp(`^${TOKEN}(\\.${TOKEN})*$`);
const MAX_SUBJECT = 256;

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const subject = url.searchParams.get("subject") || env.DEFAULT_SUBJECT;
    if (typeof subject !== "string" || subject.length > MAX_SUBJECT || !SUBJECT.test(subject)) {
      return Response.json({ ok: false, error: "subject must be dot-separated printable " +
                             "ASCII tokens without spaces or wildcards" }, { status: 400 });
    }
    const payload = request.method === "POST" ? await request.text() : "ping";
    try {
      const token = await accessToken(env);
      const result = await publish(env.NATS_WS_URL, token, subject, payload);
      return Response.json(result, { status: result.ok ? 200 : 502 });
    } catch (err) {
      return Response.json({ ok: false, error: String(err.message || err) }, { status: 502 });
    }
  },
};

async function accessToken(env) {
  const res = await fetch(env.TOKEN_URL, {
    headers: {
      "CF-Access-Client-Id": env.CF_CLIENT_ID,
      "CF-Access-Client-Secret": env.CF_CLIENT_SECRET,
    },
  });
  if (!res.ok) {
    throw new Error(`token endpoint answered ${res.status}`);
  }
  return (await res.text()).trim();
}

async function publish(natsUrl, token, subject, payload) {
  const res = await fetch(natsUrl, { headers: { Upgrade: "websocket" } });
  const ws = res.webSocket;
  if (!ws) {
    throw new Error(`no WebSocket upgrade from nats-server (HTTP ${res.status})`);
  }
  ws.accept();
  const bytes = new TextEncoder().encode(payload);
  return new Promise((resolve) => {
    let buffer = "";
    let sent = false;
    const finish = (result) => {
      try { ws.close(1000, "done"); } catch (_) { /* already closed */ }
      resolve(result);
    };
    ws.addEventListener("message", (event) => {
      buffer += typeof event.data === "string" ? event.data : new TextDecoder().decode(event.data);
      let end;
      while ((end = buffer.indexOf(CRLF)) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (line.startsWith("INFO ") && !sent) {
          sent = true;
          const connect = { auth_token: token, protocol: 1, verbose: false, pedantic: false,
                            lang: "cloudflare-worker", version: "1", name: "edge-worker" };
          ws.send(`CONNECT ${JSON.stringify(connect)}${CRLF}` +
                  `PUB ${subject} ${bytes.length}${CRLF}${payload}${CRLF}PING${CRLF}`);
        } else if (line === "PING") {
          ws.send(`PONG${CRLF}`);
        } else if (line === "PONG") {
          finish({ ok: true });
        } else if (line.startsWith("-ERR")) {
          finish({ ok: false, error: line.slice(5).replace(/^'|'$/g, "") });
        }
      }
    });
    ws.addEventListener("close", () => finish({ ok: false, error: "connection closed" }));
    ws.addEventListener("error", () => finish({ ok: false, error: "websocket error" }));
  });
}
