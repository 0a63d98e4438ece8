// Helpers shared by the browser tests: bounded polling and failures that say what failed.
'use strict';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A failure of the test itself (as opposed to an error thrown while polling). */
class TestFailure extends Error {}
function fail(msg) {
  throw new TestFailure(msg);
}

/** Polls `fn` until it returns a truthy value; fails with `what()` after `ms`. */
async function until(what, ms, fn, intervalMs = 250) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      if (e instanceof TestFailure) throw e;
      last = e;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? `: ${last.message}` : '';
      fail(`timed out after ${ms} ms: ${typeof what === 'function' ? what() : what}${detail}`);
    }
    await sleep(intervalMs);
  }
}

/** Waits (10 s at most) until the server at `base` serves the demo page. */
function demoPageServed(base) {
  return until(`server at ${base} answers GET /`, 10_000, async () => {
    const res = await fetch(`${base}/`);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const body = await res.text();
    if (!body.includes('join-form')) throw new Error('GET / is not the demo page');
    return true;
  });
}

/**
 * Runs `main` under a watchdog of `limitMs`; on failure saves artifacts (bounded), then
 * cleans up and exits with the test's code.
 */
function runTest({ main, limitMs, info, dumpArtifacts, cleanup }) {
  (async () => {
    let code = 0;
    const watchdog = new Promise((_, reject) => {
      const t = setTimeout(
        () => reject(new TestFailure(`the whole test took longer than ${limitMs / 1000} s`)),
        limitMs,
      );
      t.unref();
    });
    try {
      await Promise.race([main(), watchdog]);
      info('PASS');
    } catch (err) {
      code = 1;
      await Promise.race([dumpArtifacts(err), sleep(15_000)]);
    }
    await cleanup();
    process.exit(code);
  })();
}

module.exports = { sleep, TestFailure, fail, until, runTest, demoPageServed };
