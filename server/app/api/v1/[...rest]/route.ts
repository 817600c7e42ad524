import { json } from "@/src/http";

// Unknown API paths answer JSON like every other API error, not Next's HTML 404 page.
const notFound = async () => json({ error: { code: "not_found", message: "no such API route", details: {} } }, 404);
export { notFound as GET, notFound as POST, notFound as PUT, notFound as PATCH, notFound as DELETE };
