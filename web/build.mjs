// Builds the chat UI into dist/: one JavaScript and one CSS bundle with content-hashed names, and
// an index.html that names them. config.json is not part of the build: the server (or the
// deployment) writes it next to index.html and the page fetches it at run time.
//
// The output depends only on src/ and the lockfile-pinned packages, so `npm ci && npm run build`
// reproduces the committed dist/ byte for byte (tests/e2e/test_web_build.py checks that).
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] ? resolve(process.argv[2]) : join(root, "dist");

await rm(out, { recursive: true, force: true });
const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: ["src/main.js", "src/style.css"],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  outdir: join(out, "assets"),
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  legalComments: "none", // the licences go into one file instead (see thirdPartyNotices)
  sourcemap: false,
  metafile: true,
  write: true,
  logLevel: "warning",
  // Amplify reads process.env in a few places; a browser has none.
  define: { "process.env.NODE_ENV": '"production"', global: "globalThis" },
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const pick = (prefix, ext) => {
  const name = outputs.find((n) => n.startsWith(prefix) && n.endsWith(ext));
  if (!name) throw new Error(`esbuild wrote no ${prefix}*${ext}`);
  // Root-relative: the hosting serves index.html on every path of the app (/a/b too), so a
  // relative assets/ link would resolve under that path.
  return `/assets/${name}`;
};
const script = pick("main-", ".js");
const style = pick("style-", ".css");

// Subresource integrity on top of the hashed names: a swapped file is refused by the browser.
const integrity = async (path) =>
  `sha384-${createHash("sha384").update(await readFile(join(out, path))).digest("base64")}`;

// The favicon is a file of the site, as the hosting's CSP (img-src 'self') allows; its name
// carries a hash of its content like the bundles', so it can be cached as long.
async function copyFavicon() {
  const svg = await readFile(join(root, "src", "favicon.svg"));
  const hash = createHash("sha256").update(svg).digest("hex").slice(0, 8).toUpperCase();
  await writeFile(join(out, "assets", `favicon-${hash}.svg`), svg);
  return `/assets/favicon-${hash}.svg`;
}
const favicon = await copyFavicon();

// The licence of every npm package that ends up in the bundle (Amplify is Apache-2.0, which asks
// that its licence travel with it), in one file next to the assets.
async function thirdPartyNotices(inputs) {
  const packages = new Map();
  for (const input of inputs) {
    // The innermost node_modules folder names the package (nested copies are their own).
    const match = /^(.*node_modules\/)((?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (match) packages.set(`${match[2]} ${match[1]}`, join(root, match[1], match[2]));
  }
  const sections = [];
  for (const key of [...packages.keys()].sort()) {
    const dir = packages.get(key);
    const { name, version, license } = JSON.parse(await readFile(join(dir, "package.json"), "utf8"));
    const file = (await readdir(dir)).find((f) => /^(licen[cs]e|notice)/i.test(f));
    const text = file
      ? (await readFile(join(dir, file), "utf8")).trim()
      : `License: ${license}. The package ships no licence file; the ${license} text is given ` +
        "in this file for another package under the same licence.";
    sections.push(`${name}@${version} (${license})\n\n${text}\n`);
  }
  return `Third-party software in this bundle\n\n${sections.join("\n" + "-".repeat(72) + "\n\n")}`;
}
const bundle = Object.entries(result.metafile.outputs).find(([path]) => path.endsWith(".js"))[1];
const notices = await thirdPartyNotices(Object.keys(bundle.inputs));
await writeFile(join(out, "assets", "THIRD-PARTY-LICENSES.txt"), notices);

const template = await readFile(join(root, "src", "index.html"), "utf8");
const html = template
  .replace("%STYLE%", style)
  .replace("%STYLE_SRI%", await integrity(style))
  .replace("%SCRIPT%", script)
  .replace("%SCRIPT_SRI%", await integrity(script))
  .replace("%FAVICON%", favicon);
await mkdir(out, { recursive: true });
await writeFile(join(out, "index.html"), html);
console.log(`built ${out}: index.html, ${script}, ${style}`);
