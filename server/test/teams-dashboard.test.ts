// Teams in the dashboard, in Chromium against the built web process and a real Postgres: the
// platform page (create, duplicate slug, rename with a bad slug, invite, suspend/resume, delete
// confirmed by the slug), an invitation link opened by a new person and by an existing account,
// a used link, the team switcher, and removing a member ending their login.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { createTestDatabase } from "@keel/test/db";
import { ADMIN, ensureBuild, startServer, type RunningServer } from "./harness.js";
import { launchChromium, settled } from "./e2e-helpers.js";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let server: RunningServer;
let browser: Browser;
const contexts: BrowserContext[] = [];
let admin: Page;

async function newPage(): Promise<Page> {
  const c = await browser.newContext({ baseURL: server.url, viewport: { width: 1280, height: 900 } });
  contexts.push(c);
  return c.newPage();
}

beforeAll(async () => {
  ensureBuild();
  db = await createTestDatabase();
  server = await startServer(db.url);
  browser = await launchChromium();
  admin = await newPage();
}, 300_000);

afterAll(async () => {
  for (const c of contexts) await c.close();
  await browser?.close();
  await server?.stop();
  await db?.drop();
});

async function logIn(page: Page, email: string, password: string): Promise<void> {
  await page.goto("/login");
  await page.getByLabel("Email", { exact: true }).fill(email);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(/\/agents$/);
}

const row = (page: Page, slug: string) => page.locator(`tr[data-team="${slug}"]`);
async function manage(page: Page, slug: string) {
  const r = row(page, slug);
  if (!(await r.locator("details").evaluate((d) => (d as HTMLDetailsElement).open))) await r.getByText("Manage").click();
  return r;
}
/** Invites through a form of the page; returns the link shown once. */
async function invite(scope: Page | ReturnType<Page["locator"]>, page: Page, form: string, email: string, role: string): Promise<string> {
  const f = scope.getByRole("form", { name: form });
  await f.getByLabel("invite email", { exact: true }).fill(email);
  await f.getByLabel("invite role", { exact: true }).selectOption(role);
  await f.getByRole("button", { name: "Invite" }).click();
  const link = (await page.getByTestId("new-invitation").locator("code").textContent())!;
  expect(link).toMatch(/\/invite#ki_/);
  return link;
}

const BOB = { email: "bob@labs.example", password: "bob's long password" };
const CAROL = { email: "carol@labs.example", password: "carol's long password" };
let bobLink = "";
let bob: Page;

describe.sequential("teams in the dashboard", () => {
  test("the platform page: create a team; a duplicate slug is refused with its reason", async () => {
    await logIn(admin, ADMIN.email, ADMIN.password);
    await admin.getByRole("link", { name: "Platform" }).click();
    await admin.waitForURL(/\/platform$/);
    await settled(admin);
    await row(admin, "acme").waitFor();
    await admin.getByLabel("new team slug", { exact: true }).fill("research");
    await admin.getByLabel("new team name", { exact: true }).fill("Research");
    await admin.getByRole("button", { name: "Create team" }).click();
    await row(admin, "research").waitFor();
    await admin.getByLabel("new team slug", { exact: true }).fill("research");
    await admin.getByRole("button", { name: "Create team" }).click();
    await admin.getByRole("alert").filter({ hasText: "a team with this slug exists" }).waitFor();
  });

  test("rename: an invalid slug shows the 422, a good one renames", async () => {
    const r = await manage(admin, "research");
    const form = r.getByRole("form", { name: "rename research" });
    await form.getByLabel("slug", { exact: true }).fill("Not A Slug");
    await form.getByRole("button", { name: "Rename" }).click();
    await r.getByRole("alert").filter({ hasText: "invalid input" }).waitFor();
    await form.getByLabel("slug", { exact: true }).fill("labs");
    await form.getByLabel("name", { exact: true }).fill("Labs");
    await form.getByRole("button", { name: "Rename" }).click();
    await row(admin, "labs").waitFor();
  });

  test("a platform admin invites the team's first admin; the link sets a password once; a second use is refused", async () => {
    const r = await manage(admin, "labs");
    bobLink = await invite(r, admin, "invite to labs", BOB.email, "admin");
    bob = await newPage();
    await bob.goto(bobLink);
    await bob
      .getByTestId("invitation")
      .filter({ hasText: `${BOB.email} is invited to Labs (labs) as admin` })
      .waitFor();
    await bob.getByLabel("Choose a password (12+ characters)").fill(BOB.password);
    await bob.getByRole("button", { name: "Join the team" }).click();
    await bob.waitForURL(/\/agents$/);
    await settled(bob);
    expect(await bob.getByRole("link", { name: "Platform" }).count()).toBe(0); // a team admin, not a platform admin
    const again = await newPage();
    await again.goto(bobLink);
    await again.getByRole("alert").filter({ hasText: "already used" }).waitFor();
    expect(await again.getByRole("button", { name: "Join the team" }).count()).toBe(0);
  });

  test("a team admin invites a member; removing the member ends their login", async () => {
    await bob.goto("/settings");
    await settled(bob);
    const link = await invite(bob, bob, "invite someone", CAROL.email, "member");
    await bob.locator(`tr[data-invitation="${CAROL.email}"]`).waitFor();
    const carol = await newPage();
    await carol.goto(link);
    await carol.getByLabel("Choose a password (12+ characters)").fill(CAROL.password);
    await carol.getByRole("button", { name: "Join the team" }).click();
    await carol.waitForURL(/\/agents$/);
    await bob.reload();
    await settled(bob);
    await bob.getByRole("cell", { name: CAROL.email, exact: true }).waitFor();
    expect(await bob.locator(`tr[data-invitation="${CAROL.email}"]`).count()).toBe(0); // accepted: no longer pending
    bob.once("dialog", (d) => void d.accept());
    await bob.getByRole("button", { name: `remove ${CAROL.email}` }).click();
    await bob.getByRole("cell", { name: CAROL.email, exact: true }).waitFor({ state: "detached" });
    await carol.goto("/sessions");
    await carol.waitForURL(/\/login$/);
  });

  test("an existing account joins with its own password; the team switcher moves between teams", async () => {
    await bob.goto("/settings");
    await settled(bob);
    const link = await invite(bob, bob, "invite someone", ADMIN.email, "viewer");
    const other = await newPage();
    await other.goto(link);
    await other.getByLabel("Your password").fill("not the admin's password");
    await other.getByRole("button", { name: "Join the team" }).click();
    await other.getByRole("alert").filter({ hasText: "enter its password" }).waitFor();
    await other.getByLabel("Your password").fill(ADMIN.password);
    await other.getByRole("button", { name: "Join the team" }).click();
    await other.waitForURL(/\/agents$/);
    const switcher = other.getByLabel("team", { exact: true });
    await expect.poll(() => switcher.locator("option:checked").textContent()).toBe("Labs (labs)");
    await switcher.selectOption({ label: "acme (acme)" });
    await other.waitForURL(/\/agents$/);
    await expect.poll(() => other.getByLabel("team", { exact: true }).locator("option:checked").textContent()).toBe("acme (acme)");
    const me = (await (await other.request.get("/api/v1/me")).json()) as { role: string };
    expect(me.role).toBe("admin");
  });

  test("suspend shows the reason to the team's members; resume lets them back; delete needs the slug typed", async () => {
    await admin.goto("/platform");
    await settled(admin);
    let r = await manage(admin, "labs");
    await r.getByLabel("suspension reason", { exact: true }).fill("invoice 42 unpaid");
    await r.getByRole("button", { name: "Suspend" }).click();
    await row(admin, "labs").getByText("suspended: invoice 42 unpaid").waitFor();
    await bob.goto("/agents");
    await bob.getByRole("alert").filter({ hasText: "team labs is suspended: invoice 42 unpaid" }).waitFor();
    r = await manage(admin, "labs");
    await r.getByRole("button", { name: "Resume" }).click();
    await row(admin, "labs").getByText("active").waitFor();
    await bob.reload();
    await settled(bob);
    await bob.getByText("No agents yet").waitFor();
    expect(await bob.locator(".error[role=alert]").count()).toBe(0);

    r = await manage(admin, "labs");
    const del = r.getByRole("form", { name: "delete labs" });
    await del.getByLabel("confirm slug", { exact: true }).fill("lab");
    await del.getByRole("button", { name: "Delete team" }).click();
    await r.getByRole("alert").filter({ hasText: "type the team's slug" }).waitFor();
    await del.getByLabel("confirm slug", { exact: true }).fill("labs");
    await del.getByRole("button", { name: "Delete team" }).click();
    await row(admin, "labs").waitFor({ state: "detached" });
    await bob.goto("/sessions");
    await bob.waitForURL(/\/login$/);
  });
});
