// The socket's peer address travels from the HTTP server to the route handlers in this header:
// Next's route handlers never see the socket. `keel web` (cli/src/web.ts) sets it on every request,
// replacing whatever a client sent, so it cannot be forged there. Plain module (no Next imports):
// the CLI imports it too.
export const PEER_ADDRESS_HEADER = "x-keel-peer-address";
