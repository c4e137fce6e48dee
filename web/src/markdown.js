// Model output to DOM: markdown parsed by marked, then sanitised by DOMPurify before it is
// attached. Model output never reaches the DOM as raw HTML: marked passes inline HTML through, so
// DOMPurify is what stands between a hostile answer and the page, with these extra rules:
//   - no images, media, forms, frames, SVG or MathML (an image URL can leak the conversation);
//   - only http(s), mailto and in-page links survive (DOMPurify's URI rules drop javascript:);
//   - every link opens in a new tab without a referrer or an opener.
import DOMPurify from "dompurify";
import { Marked } from "marked";

const marked = new Marked({ gfm: true, breaks: false, async: false });

const FORBID_TAGS = [
  "img", "picture", "source", "video", "audio", "track", "svg", "math", "iframe", "frame",
  "object", "embed", "form", "input", "button", "select", "textarea", "style", "link", "meta",
  "base",
];
const SAFE_LINK = /^(?:https?:|mailto:|#)/i;

// Model output may not style itself with the page's classes; only a code fence's language stays.
DOMPurify.addHook("uponSanitizeAttribute", (node, data) => {
  if (data.attrName === "class" && !/^language-[\w+-]+$/.test(data.attrValue)) {
    data.keepAttr = false;
  }
});

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    const href = node.getAttribute("href") || "";
    if (!SAFE_LINK.test(href.trim())) node.removeAttribute("href");
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

/** A sanitised DOM fragment for the markdown `text`. */
export function markdownFragment(text) {
  const html = marked.parse(text);
  return DOMPurify.sanitize(html, {
    RETURN_DOM_FRAGMENT: true,
    FORBID_TAGS,
    FORBID_ATTR: ["style", "id", "srcset"],
  });
}

/** Replace `container`'s content with `text` rendered as markdown, code blocks with a copy button. */
export function renderMarkdown(container, text) {
  const fragment = markdownFragment(text);
  for (const pre of fragment.querySelectorAll("pre")) {
    const code = pre.querySelector("code");
    const language = /language-([\w+-]+)/.exec(code?.className || "")?.[1];
    const block = document.createElement("div");
    block.className = "code-block";
    const bar = document.createElement("div");
    bar.className = "code-bar";
    const label = document.createElement("span");
    label.textContent = language || "code";
    const copy = document.createElement("button");
    copy.type = "button";
    copy.className = "copy";
    copy.textContent = "Copy";
    copy.setAttribute("aria-label", language ? `Copy ${language} code` : "Copy code");
    bar.append(label, copy);
    pre.replaceWith(block);
    block.append(bar, pre);
  }
  // Code and tables scroll sideways on narrow screens: keyboard users must be able to reach them.
  for (const wide of fragment.querySelectorAll("pre, table")) wide.tabIndex = 0;
  container.replaceChildren(fragment);
}

async function copyText(text) {
  if (navigator.clipboard?.writeText) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Pages on a plain-http non-loopback host have no Clipboard API; select and copy instead.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "visually-hidden";
  document.body.append(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error("copy refused");
}

/** One listener for every copy button under `root`. */
export function handleCopyButtons(root) {
  root.addEventListener("click", (event) => {
    const button = event.target.closest("button.copy");
    if (!button) return;
    const code = button.closest(".code-block")?.querySelector("pre code, pre");
    copyText(code?.textContent || "").then(
      () => flash(button, "Copied"),
      () => flash(button, "Copy failed"),
    );
  });
}

function flash(button, text) {
  button.textContent = text;
  setTimeout(() => { button.textContent = "Copy"; }, 1500);
}
