// Response headers for every page and API answer (next.config.ts `headers()`, and proxy.ts for
// the answers it makes itself). Plain CommonJS for the same reason as api-routes.cjs: next.config.ts
// requires it while Next loads its config. The dashboard is served from one origin and framed by
// no one. Next's App Router hydrates with inline <script> tags and React sets inline styles, hence
// 'unsafe-inline' for scripts and styles (a nonce would force every page to render per request);
// everything else is 'self' only: no third-party script, frame, form target or connection.
"use strict";

const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self' 'unsafe-inline'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const SECURITY_HEADERS = Object.freeze([
  { key: "Content-Security-Policy", value: CONTENT_SECURITY_POLICY },
  // For browsers that predate frame-ancestors.
  { key: "X-Frame-Options", value: "DENY" },
  { key: "X-Content-Type-Options", value: "nosniff" },
  // Session ids are in URLs (/sessions/<id>): never send them to another site.
  { key: "Referrer-Policy", value: "no-referrer" },
  { key: "Cross-Origin-Opener-Policy", value: "same-origin" },
  { key: "Permissions-Policy", value: "camera=(), microphone=(), geolocation=(), payment=()" },
]);

module.exports = { CONTENT_SECURITY_POLICY, SECURITY_HEADERS };
