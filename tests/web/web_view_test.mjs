// The aggregator's web view in a real browser (Debian's Chromium, driven by
// playwright-core): what a person sees must be the fleet's numbers.
//   node web_view_test.mjs URL EXPECTED_PIPE_BYTES SCREENSHOT
import { chromium } from "playwright-core";

const [url, expectedText, screenshot] = process.argv.slice(2);
const expected = Number(expectedText);
const fail = (message) => { console.error(`web view: ${message}`); process.exitCode = 1; };
const numberIn = (cell) => Number(cell.replace(/,/g, ""));
const isPipeWriter = (key) => /(^|;)(anon_)?pipe_write$/.test(key);

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  // Before any history sample, everything held now is new in the diff.
  await page.goto(`${url}/?cluster=ci&by=function&class=hidden&before=10m`);
  let pipeBytes = 0;
  for (let attempt = 0; attempt < 90 && !(pipeBytes >= expected); ++attempt) {
    if (attempt) {
      await page.waitForTimeout(1000);
      await page.click("#refresh");
    }
    await page.waitForSelector("body[data-loaded=true]");
    const rows = await page.$$eval("#top tbody tr", (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
    pipeBytes = rows.filter((cells) => isPipeWriter(cells[4])).reduce((sum, cells) => sum + numberIn(cells[0]), 0);
  }
  // Other processes may write pipes meanwhile: the workload's part is exact.
  if (!(pipeBytes >= expected && pipeBytes <= expected * 1.001)) {
    fail(`the top table shows ${pipeBytes} bytes on the pipe writer, expected ${expected}`);
  }
  const frames = await page.$$eval(".frame", (divs) => divs.map((d) => ({ name: d.dataset.name, title: d.title })));
  const pipeFrame = frames.find((f) => /^(anon_)?pipe_write$/.test(f.name));
  if (!pipeFrame) fail(`no pipe_write frame in the flame graph (${frames.length} frames)`);
  const hosts = await page.$$eval("#hosts tbody tr td:first-child", (tds) => tds.map((td) => td.textContent));
  if (!hosts.includes("host-a")) fail(`hosts table: ${JSON.stringify(hosts)}`);
  // History samples taken before the kernel's symbols arrived name frames by
  // offset: the newest sample, taken since, names the pipe writer.
  let diffRows = [];
  for (let attempt = 0; attempt < 60; ++attempt) {
    diffRows = await page.$$eval("#diff tbody tr", (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
    if (diffRows.some((cells) => cells[5] === "new" && isPipeWriter(cells[6]))) break;
    await page.waitForTimeout(1000);
    await page.click("#refresh");
    await page.waitForSelector("body[data-loaded=true]");
  }
  if (!diffRows.some((cells) => cells[5] === "new" && isPipeWriter(cells[6]))) {
    fail(`the diff against 10 minutes ago should show the pipe writer as new: ${JSON.stringify(diffRows.slice(0, 5))}`);
  }
  // The equation's hidden traced paths, once a classification has seen the pipes.
  for (let attempt = 0; attempt < 60; ++attempt) {
    if (/pipe_write/.test(await page.textContent("#explain"))) break;
    await page.waitForTimeout(1000);
    await page.click("#refresh");
    await page.waitForSelector("body[data-loaded=true]");
  }
  const explain = await page.textContent("#explain");
  if (!explain.includes("MemTotal") || !/pipe_write/.test(explain)) fail(`explain has no pipe path: ${explain}`);
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`web view: pipe writer ${pipeBytes} bytes in the table, frame "${pipeFrame?.name}", ` +
              `${frames.length} frames, hosts ${hosts.join(",")}; screenshot ${screenshot}`);
} finally {
  await browser.close();
}
