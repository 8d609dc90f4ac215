// The aggregator's web view in a real browser (Debian's Chromium, driven by
// playwright-core): what a person sees must be the fleet's numbers.
//   node web_view_test.mjs URL WORKLOAD_PID EXPECTED_PIPE_BYTES SCREENSHOT
import { chromium } from "playwright-core";

const [url, workloadPid, expectedText, screenshot] = process.argv.slice(2);
const expected = Number(expectedText);
const fail = (message) => { console.error(`web view: ${message}`); process.exitCode = 1; };
const isPipeWriter = (key) => /^(anon_)?pipe_write( <- |$)/.test(key);
// The top table's rows: each cell's text, and the exact bytes of its size cells.
const topRows = (page) => page.$$eval("#top tbody tr", (trs) => trs.map((tr) => [...tr.children].map((td) => ({
  text: td.textContent, bytes: td.querySelector("[data-bytes]")?.dataset.bytes }))));

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  // As a new user opens it, with no parameters: the only cluster is opened.
  await page.goto(`${url}/`);
  await page.waitForSelector("body[data-loaded=true]");
  const chosen = await page.$eval("#cluster", (select) => select.value);
  const clusters = await page.$$eval("#clusters tbody tr", (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  if (chosen !== "ci") fail(`at / the only cluster, ci, should be open: the cluster is '${chosen}'`);
  if (!clusters.some((cells) => cells[3] === "ci" && cells[0] === "1")) fail(`clusters table: ${JSON.stringify(clusters)}`);
  const status = await page.textContent("#status");
  if (/needs a cluster/.test(status)) fail(`at / the view still asks for a cluster: ${status}`);

  // The workload's own pages (pid filter): another process writing pipes
  // meanwhile cannot move the figure, so it must be exact.
  // Before any history sample, everything held now is new in the diff.
  await page.goto(`${url}/?cluster=ci&by=function&class=hidden&pid=${workloadPid}&before=10m`);
  let pipeBytes = 0, rows = [];
  for (let attempt = 0; attempt < 90 && pipeBytes !== expected; ++attempt) {
    if (attempt) {
      await page.waitForTimeout(1000);
      await page.click("#refresh");
    }
    await page.waitForSelector("body[data-loaded=true]");
    rows = await topRows(page);
    pipeBytes = rows.filter((cells) => isPipeWriter(cells[4].text)).reduce((sum, cells) => sum + Number(cells[0].bytes), 0);
  }
  if (pipeBytes !== expected) fail(`the top table shows ${pipeBytes} bytes on the pipe writer, expected ${expected}`);
  const notHidden = rows.filter((cells) => cells[3].text !== "hidden");
  if (notHidden.length) fail(`the hidden view shows rows of other classes: ${JSON.stringify(notHidden)}`);
  if (!rows.every((cells) => /^-?[0-9.]+ (B|KiB|MiB|GiB|TiB)$/.test(cells[0].text))) {
    fail(`sizes are not in IEC units: ${JSON.stringify(rows.map((cells) => cells[0].text))}`);
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
