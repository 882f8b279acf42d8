// Browser test of the chat page: two headless Chromium pages (Debian's /usr/bin/chromium, driven by
// playwright-core; no browser download) join `wscoro serve` in chat mode, set nicknames, and one
// message typed in the first page appears in the second. Saves a screenshot as a test artifact.
//
// Usage: node chat.test.mjs --wscoro PATH --artifacts DIR
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const arg = (name) => {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error(`missing ${name}`);
  return process.argv[i + 1];
};
const wscoro = arg("--wscoro");
const artifacts = arg("--artifacts");
const TIMEOUT = 15000;
// Starting Chromium takes seconds; on two cores shared with the rest of the suite (ctest -j2) it
// has been seen to take more than 15.
const LAUNCH_TIMEOUT = 60000;

function startServer() {
  const child = spawn(wscoro, ["serve", "--host", "127.0.0.1", "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no listening line")), TIMEOUT);
    let buffered = "";
    child.stdout.on("data", (chunk) => {
      buffered += chunk;
      const m = buffered.match(/listening on ws:\/\/([\d.]+):(\d+)(\/\S*)/);
      if (m) { clearTimeout(timer); resolve({ child, http: `http://${m[1]}:${m[2]}/` }); }
    });
    child.on("exit", (code) => reject(new Error(`server exited early with ${code}`)));
  });
}

async function main() {
  const { child, http } = await startServer();
  let browser;
  try {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      headless: true,
      chromiumSandbox: false, // --no-sandbox: CI runs as root
      args: ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"],
      timeout: LAUNCH_TIMEOUT,
    });
    const open = async (nick) => {
      const context = await browser.newContext(); // a fresh profile per page
      const page = await context.newPage();
      page.setDefaultTimeout(TIMEOUT);
      await page.goto(http);
      await page.locator("#status.online").waitFor();
      await page.fill("#nick", nick);
      await page.click("#set-nick");
      await page.locator("#log li", { hasText: `is now ${nick}` }).first().waitFor();
      return page;
    };
    const alice = await open("alice");
    const bob = await open("bob");
    // Alice sees Bob arrive under his new name, so both nicknames went through the server.
    await alice.locator("#log li", { hasText: "is now bob" }).first().waitFor();

    await alice.fill("#text", "hello from alice");
    await alice.click("#send");
    const line = bob.locator("#log li", { hasText: "hello from alice" });
    await line.waitFor();
    const nick = await line.locator(".nick").textContent();
    if (nick !== "alice") throw new Error(`message shown with nickname ${JSON.stringify(nick)}, expected "alice"`);

    mkdirSync(artifacts, { recursive: true });
    const shot = join(artifacts, "chat-bob.png");
    await bob.screenshot({ path: shot, fullPage: true });
    await alice.screenshot({ path: join(artifacts, "chat-alice.png"), fullPage: true });
    console.log(`ok: bob saw alice's message; screenshot ${shot}`);
  } finally {
    if (browser) await browser.close();
    child.kill("SIGTERM");
  }
  const code = await new Promise((resolve) => child.exitCode !== null ? resolve(child.exitCode) : child.on("exit", resolve));
  if (code !== 0) throw new Error(`wscoro serve exited with ${code} after SIGTERM`);
}

const watchdog = setTimeout(() => { console.error("browser test timed out"); process.exit(1); }, 60000);
main().then(() => { clearTimeout(watchdog); }, (e) => { console.error(e); process.exit(1); });
