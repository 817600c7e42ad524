import { json } from "@/src/http";
import { openaiErrorBody } from "@/src/openai";

// Unknown OpenAI-compatible paths answer as OpenAI does (JSON, invalid_request_error), not with
// Next's HTML 404 page: clients parse the error body. No credentials needed to learn a path is wrong.
const notFound = async (req: Request) => json(openaiErrorBody(404, "unknown_url", `Invalid URL (${req.method} ${new URL(req.url).pathname})`), 404);
export { notFound as GET, notFound as POST, notFound as PUT, notFound as PATCH, notFound as DELETE };
