// Firefox for the end-to-end tests: Debian's firefox-esr driven by puppeteer-core over WebDriver
// BiDi (puppeteer-core never downloads a browser of its own).
import puppeteer from "puppeteer-core";

/**
 * The Firefox prefs the tests need to connect over loopback, each with its reason. Both were
 * checked by running the tests without each: without either one Firefox offers no 127.0.0.1
 * candidate, and the server peer on 127.0.0.1 cannot be reached (and on a machine with no
 * network but `lo`, nothing connects at all).
 *
 * Not needed, also checked: `media.peerconnection.ice.obfuscate_host_addresses: false` (a media
 * permission already turns mDNS names off); `media.navigator.permission.disabled` with
 * `media.navigator.streams.fake` (a running getUserMedia capture of the fake device does NOT
 * count as a media permission in Firefox 153: candidates stay mDNS names, default route only);
 * a background-timer pref (a background tab's timers run once a second, but openFirefoxPage
 * gives every page its own window, so no page is a background tab; for tabs,
 * `dom.min_background_timeout_value_without_budget_throttling: 4` would lift it).
 * `media.peerconnection.ice.tcp` is left on on purpose: the compact codes must cope with the TCP
 * candidates (port 9) that a real Firefox adds.
 */
export const FIREFOX_PREFS = Object.freeze({
  // Gather candidates on loopback (127.0.0.1 and ::1) too. Off by default: Firefox then never
  // offers a loopback address, whatever else is set.
  "media.peerconnection.ice.loopback": true,
  // A page without a camera or microphone permission gets "default address only" ICE: host
  // candidates of the default-route interface only (never loopback), hidden behind mDNS names.
  // Allowing the microphone to every site by default is the persistent media permission that
  // lifts both for the test pages (no page has to call getUserMedia, and none does).
  "permissions.default.microphone": 1,
});

/**
 * Launches headless Firefox with `prefs` (default FIREFOX_PREFS) in a fresh temporary profile
 * (puppeteer makes one per launch and deletes it on close).
 */
export async function launchFirefox({ prefs = FIREFOX_PREFS } = {}) {
  const executablePath = process.env.FIREFOX_BIN ?? "/usr/bin/firefox-esr";
  return puppeteer.launch({
    browser: "firefox",
    protocol: "webDriverBiDi",
    executablePath,
    headless: true,
    extraPrefsFirefox: { ...prefs },
  });
}

/**
 * Opens `url` + "/" in a fresh browser context (its own cookies and storage) and window of
 * `browser`, with the client loaded as `window.sb`. Uncaught exceptions and unhandled
 * rejections are collected in `page.problems`, as openPage in harness.mjs does for Chromium.
 */
export async function openFirefoxPage(browser, url) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage({ type: "window" });
  page.problems = [];
  page.on("pageerror", (error) => page.problems.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" && message.text().startsWith("unhandled rejection")) {
      page.problems.push(message.text());
    }
  });
  await page.goto(`${url}/`);
  await page.evaluate(async () => {
    window.sb = await import("/switchboard.js");
    window.addEventListener("unhandledrejection", (event) => {
      console.error(`unhandled rejection: ${event.reason?.code ?? ""} ${event.reason?.message ?? event.reason}`);
    });
  });
  // Closing the page closes its context too.
  const close = page.close.bind(page);
  page.close = async () => {
    await close().catch(() => {});
    await context.close().catch(() => {});
  };
  return page;
}

/** Polls `predicate` in a puppeteer page until it returns a truthy value or `timeoutMs` passes. */
export async function waitForFirefox(page, predicate, arg, timeoutMs = 20000) {
  const handle = await page.waitForFunction(predicate, { timeout: timeoutMs, polling: 50 }, arg);
  return handle.jsonValue();
}
