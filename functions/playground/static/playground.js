// The model page: renders card.json, builds the form for the model's task, and calls the model's
// own POST predict route, as any client does. Plain script, no build step, no other origin; text
// from the model or the user only ever goes in through textContent.
//
// On a JWT stage the page's own files open without a token, but its card, plots and predictions
// are behind the API's authorizer: when the API answers 401 the page asks for a token, keeps it in
// sessionStorage (this tab, until it closes; never in a URL or a log) and sends it as
// `Authorization: Bearer` on every call it makes. Plots are fetched with that header too and shown
// through blob: URLs, so no model file needs a public route.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const PREDICT = "predict"; // relative to /models/{name}/, so it works under a stage's prefix
  const SHOWN_CHARS = 160; // longer strings (base64 images) are shortened on screen, not in copies
  const TOKEN_KEY = "modelfn.token"; // sessionStorage key of the user's bearer token

  // h("div", {class: "x"}, child, "text") -> an element; attributes are set, never HTML parsed.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") el.textContent = value;
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  const percent = (p) => (100 * p).toFixed(1) + "%";
  const number = (v) => (Math.abs(v) >= 100 ? v.toFixed(1) : Number(v.toPrecision(4)).toString());

  // --- state -------------------------------------------------------------------------------

  let card = null;
  let example = null; // the example the input came from, to show the data set's answer
  let image = null; // the image to send: base64 PNG of an example or a data: URL of a file
  const last = { request: "", response: "" };

  // --- the token and every call ------------------------------------------------------------

  function storedToken() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || "";
    } catch {
      return ""; // storage switched off: the page works where the API needs no token
    }
  }

  // Every request the page makes after loading goes through here, with the token if there is one.
  async function api(path, init = {}) {
    const headers = new Headers(init.headers || {});
    const token = storedToken();
    if (token) headers.set("authorization", `Bearer ${token}`);
    const response = await fetch(path, { ...init, headers });
    if (response.status === 401) askForToken(response);
    return response;
  }

  function askForToken(response) {
    // API Gateway's JWT authorizer names the problem in www-authenticate ("the token has expired").
    const challenge = /error_description="([^"]*)"/.exec(response.headers.get("www-authenticate") || "");
    $("auth-why").textContent = storedToken()
      ? `The API refused the token (${challenge ? challenge[1] : "401 Unauthorized"}); paste a new one.`
      : "This API answers only calls that carry a bearer token: the model card, its plots and predictions.";
    $("auth").hidden = false;
  }

  function useToken(event) {
    event.preventDefault();
    const token = $("token").value.trim().replace(/^bearer\s+/i, "");
    if (!token) return;
    try {
      sessionStorage.setItem(TOKEN_KEY, token);
    } catch {
      $("auth-why").textContent = "This browser keeps no sessionStorage for this page, so the token cannot be used.";
      return;
    }
    $("token").value = "";
    $("auth").hidden = true;
    $("forget-token").hidden = false;
    if (!card) loadCard(); // else the next call carries it
  }

  function forgetToken() {
    sessionStorage.removeItem(TOKEN_KEY);
    $("forget-token").hidden = true;
  }

  // --- the model card ----------------------------------------------------------------------

  function renderCard() {
    document.title = `${card.name} · modelfn playground`;
    $("title").textContent = card.name;
    $("badges").replaceChildren(
      h("span", { class: "badge", text: card.task }),
      h("span", { class: "badge", text: `${card.alias} → ${card.version}` }),
    );
    const facts = [
      ["Version", h("code", { text: card.version })],
      ["Alias", card.alias],
      ["Created", new Date(card.created_at).toISOString().replace(".000Z", "Z")],
    ];
    if (card.architecture) facts.push(["Architecture", h("code", { text: card.architecture })]);
    if (card.labels.length) facts.push(["Labels", card.labels.join(", ")]);
    const data = card.data; // a model trained here: its data and its run
    if (data) {
      const splits = Object.entries(data.examples).map(([s, n]) => `${s} ${n.toLocaleString()}`).join(", ");
      facts.push(["Data", `${data.dataset} (${splits})`],
        ["Data sha256", h("code", { title: data.files.join(", "), text: data.sha256 })]);
    }
    const run = card.training;
    if (run) {
      facts.push(["Training", `preset ${run.preset}, ${run.epochs} epoch${run.epochs === 1 ? "" : "s"}, ` +
        `seed ${run.seed}, ${run.seconds.toFixed(1)} s`]);
    }
    const imported = card.imported; // a model brought in: where from, and how it was checked
    if (imported) {
      facts.push(["Imported", `${imported.source}: ${imported.reference}`]);
      const parity = Object.entries(imported.parity).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(", ");
      facts.push(["Import check", parity
        ? `max |difference| ${parity} (tolerance ${imported.tolerance}, on ${imported.parity_inputs} inputs)`
        : `nothing to compare against (${imported.parity_inputs})`]);
    }
    const tensor = (t) => `${t.name} ${t.datatype} [${t.shape.join(", ")}]`;
    facts.push(["Inputs", card.inputs.map(tensor).join("; ")], ["Outputs", card.outputs.map(tensor).join("; ")]);
    facts.push(["Frameworks", Object.entries(card.frameworks).map(([k, v]) => `${k} ${v}`).join(", ")]);
    $("facts").replaceChildren(...facts.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)]));

    const metrics = Object.entries(card.metrics);
    $("metrics").replaceChildren(
      ...metrics.map(([k, v]) =>
        h("tr", {}, h("th", { text: k }), h("td", { class: "num", text: number(v) }))),
    );
    $("metrics-box").hidden = !metrics.length; // an imported model may come with none

    if (card.per_class.length) {
      const figures = [...new Set(card.per_class.flatMap((c) => Object.keys(c.figures)))];
      $("per-class").replaceChildren(
        h("tr", {}, h("th", { text: "label" }), figures.map((f) => h("th", { class: "num", text: f }))),
        ...card.per_class.map((c) =>
          h("tr", {}, h("td", { text: c.label }),
            figures.map((f) => h("td", { class: "num", text: f in c.figures ? number(c.figures[f]) : "" })))),
      );
      $("per-class-box").hidden = false;
    }
    $("card").hidden = false;
  }

  // Each plot through api(), so it carries the token; shown from a blob: URL. Resolves when all
  // plots are shown or have failed.
  function showPlots() {
    if (!card.plots.length) return Promise.resolve();
    $("plots-box").hidden = false;
    return Promise.all(card.plots.map(async (p) => {
      const caption = h("figcaption", { text: `${p.title} (${p.file}, sha256-checked)` });
      const figure = h("figure", {}, caption);
      $("plots").append(figure);
      try {
        const response = await api(p.url);
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const url = URL.createObjectURL(await response.blob());
        const img = h("img", { src: url, alt: p.title });
        await img.decode().catch(() => {}); // loaded before the page says it is ready
        figure.prepend(h("a", { href: url }, img));
      } catch (err) {
        caption.textContent = `${p.title}: not available (${err.message})`;
      }
    }));
  }

  // --- the form, per task ------------------------------------------------------------------

  const TASKS = {
    "image-classification": { fields: imageFields, request: imageRequest, show: showClassification },
    "text-classification": { fields: textFields, request: textRequest, show: showClassification },
    "language-modeling": { fields: languageFields, request: languageRequest, show: showLanguage },
    tensor: { fields: tensorFields, request: tensorRequest, show: showTensors },
  };

  function topKField(max, value) {
    const select = h("select", { id: "top-k", name: "top_k" });
    for (let k = 1; k <= max; k++) select.append(h("option", { value: k, selected: k === value, text: k }));
    return h("div", { class: "field" }, h("label", { for: "top-k", text: "Top k" }), select);
  }

  function imageFields() {
    const preview = h("img", { id: "preview", class: "preview", alt: "the image to classify", hidden: true });
    const file = h("input", { id: "file", type: "file", accept: "image/png,image/jpeg", onchange: () => pickFile(file.files[0]) });
    const drop = h("label", { id: "drop", class: "drop", for: "file" },
      preview,
      h("span", {}, h("span", { class: "label", text: "Pick or drop an image" }),
        h("span", { class: "muted", text: "PNG or JPEG, resized to the model's input by the function" }),
        h("br"), file));
    for (const type of ["dragenter", "dragover"]) drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      if (e.dataTransfer.files.length) pickFile(e.dataTransfer.files[0]);
    });
    return [h("div", { class: "field" }, drop), topKField(card.limits.top_k, Math.min(5, card.limits.top_k))];
  }

  function pickFile(file) {
    if (!file) return;
    example = null;
    $("preview").src = URL.createObjectURL(file);
    $("preview").hidden = false;
    const reader = new FileReader();
    reader.onload = () => { image = reader.result; }; // a data: URL, which the route accepts
    reader.readAsDataURL(file);
  }

  function imageRequest() {
    if (!image) throw new Error("pick an image, drop one, or click an example first");
    return { inputs: [image], parameters: { top_k: Number($("top-k").value) } };
  }

  function textFields() {
    return [
      h("div", { class: "field" }, h("label", { for: "text", text: "Review" }),
        h("textarea", { id: "text", placeholder: "Type or paste a movie review…", oninput: () => { example = null; } })),
    ];
  }

  function textRequest() {
    const text = $("text").value.trim();
    if (!text) throw new Error("type or paste a review first, or click an example");
    return { inputs: [text], parameters: { top_k: card.labels.length } };
  }

  function languageFields() {
    const modes = h("div", { class: "modes", role: "radiogroup" },
      [["next", "Next words"], ["score", "Perplexity"], ["generate", "Generate"]].map(([value, text]) =>
        h("label", { class: value === "next" ? "on" : null },
          h("input", { type: "radio", name: "mode", value, checked: value === "next", onchange: setMode }), text)));
    const num = (id, label, attrs) => h("div", { class: "field", "data-mode": attrs.mode },
      h("label", { for: id, text: label }), h("input", { id, type: "number", ...attrs, mode: null }));
    return [
      h("div", { class: "field" }, h("span", { class: "label", text: "Mode" }), modes),
      h("div", { class: "field" }, h("label", { for: "text", text: "Text" }),
        h("textarea", { id: "text", placeholder: "the company said it expects", oninput: () => { example = null; } })),
      h("div", { class: "row" },
        num("top-k", "Top k", { mode: "next", min: 1, max: card.limits.top_k, value: 5 }),
        num("max-tokens", "Words", { mode: "generate", min: 1, max: card.limits.max_tokens, value: 20 }),
        num("temperature", "Temperature", { mode: "generate", min: 0, max: 10, step: 0.1, value: 0.8 }),
        num("seed", "Seed", { mode: "generate", min: 0, value: 7 })),
    ];
  }

  // A tensor model: one example's named tensors as JSON, the batch axis left out.
  function tensorFields() {
    const zeros = (shape) => (shape.length ? Array.from({ length: Math.max(shape[0], 1) }, () => zeros(shape.slice(1))) : 0);
    const placeholder = JSON.stringify(Object.fromEntries(card.inputs.map((t) => [t.name, zeros(t.shape.slice(1))])));
    return [
      h("div", { class: "field" }, h("label", { for: "text", text: "One example's tensors (JSON: input name → nested list, no batch axis)" }),
        h("textarea", { id: "text", class: "code", spellcheck: "false", placeholder: shorten(placeholder, 400), oninput: () => { example = null; } })),
      h("p", { class: "muted", text: `Inputs: ${card.inputs.map((t) => `${t.name} ${t.datatype} [${t.shape.join(", ")}]`).join("; ")}. ` +
        "For whole batches or binary tensors, use the Open Inference Protocol route, POST /v2/models/{name}/infer." }),
    ];
  }

  function tensorRequest() {
    const text = $("text").value.trim();
    if (!text) throw new Error("type one example's tensors as JSON first, or click an example");
    let named;
    try {
      named = JSON.parse(text);
    } catch (err) {
      throw new Error(`not JSON: ${err.message}`);
    }
    return { inputs: [named] };
  }

  function showTensors(out) {
    return h("div", { class: "answer", id: "answer", "data-kind": "tensors" },
      Object.entries(out).map(([name, value]) => h("div", { class: "tensor" },
        h("p", { class: "headline", text: name }),
        h("pre", { text: shorten(JSON.stringify(value), 4000) }))));
  }

  const mode = () => document.querySelector("input[name=mode]:checked").value;

  function setMode() {
    for (const label of document.querySelectorAll(".modes label")) {
      label.classList.toggle("on", label.querySelector("input").checked);
    }
    for (const field of document.querySelectorAll("[data-mode]")) field.hidden = field.dataset.mode !== mode();
    if (example) $("text").value = mode() === "score" ? example.input : example.prompt;
  }

  function languageRequest() {
    const text = $("text").value.trim();
    if (!text) throw new Error("type a text first, or click an example");
    const parameters = { mode: mode() };
    if (parameters.mode === "next") parameters.top_k = Number($("top-k").value);
    if (parameters.mode === "generate") {
      parameters.max_tokens = Number($("max-tokens").value);
      parameters.temperature = Number($("temperature").value);
      if ($("seed").value !== "") parameters.seed = Number($("seed").value);
    }
    return { inputs: [text], parameters };
  }

  // --- examples ----------------------------------------------------------------------------

  function renderExamples() {
    if (!card.examples.length) return;
    const isImage = card.task === "image-classification";
    $("examples").replaceChildren(...card.examples.map((ex, i) => {
      const truth = ex.label ? h("span", { class: "truth", text: ex.label }) : null;
      const body = isImage
        ? [h("img", { src: "data:image/png;base64," + ex.input, alt: ex.summary }), truth]
        : [shorten(ex.input, 140), truth];
      return h("button", { type: "button", class: `example ${isImage ? "image" : "text"}`, title: ex.summary,
        "data-example": i, onclick: () => useExample(ex) }, body);
    }));
    $("examples-source").textContent = `(${card.examples[0].summary.split(" ").slice(0, 2).join(" ")}, one click each)`;
    // An imported model's examples are the ones its importer gave, not a test split of ours.
    if (card.imported) $("examples-title").textContent = "Examples given at import";
    $("examples-box").hidden = false;
  }

  function useExample(ex) {
    if (card.task === "image-classification") {
      image = ex.input;
      $("preview").src = "data:image/png;base64," + ex.input;
      $("preview").hidden = false;
      $("file").value = "";
    } else if (card.task === "tensor") {
      try { $("text").value = JSON.stringify(JSON.parse(ex.input), null, 1); } catch { $("text").value = ex.input; }
    } else {
      $("text").value = card.task === "language-modeling" && mode() !== "score" ? ex.prompt : ex.input;
    }
    example = ex; // after the input events above, which clear it
  }

  const shorten = (text, n) => (text.length <= n ? text : text.slice(0, n - 1) + "…");

  // --- the call ----------------------------------------------------------------------------

  async function submit(event) {
    event.preventDefault();
    const task = TASKS[card.task];
    let body;
    try {
      body = task.request();
    } catch (err) {
      $("result").replaceChildren(h("div", { class: "answer error", text: err.message }));
      return;
    }
    $("submit").disabled = true;
    const url = new URL(PREDICT, location.href).href;
    const started = performance.now();
    try {
      const response = await api(PREDICT, {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
      });
      const text = await response.text();
      const ms = performance.now() - started;
      $("timing").textContent = `HTTP ${response.status} in ${ms.toFixed(0)} ms`;
      showRaw(url, body, response, text);
      let answer;
      try { answer = JSON.parse(text); } catch { answer = { error: text }; }
      if (!response.ok) {
        $("result").replaceChildren(h("div", { class: "answer error", text: answer.error || answer.message || text }));
      } else {
        $("result").replaceChildren(task.show(answer.outputs[0]));
      }
    } catch (err) {
      $("result").replaceChildren(h("div", { class: "answer error", text: `the request failed: ${err.message}` }));
    } finally {
      $("submit").disabled = false;
    }
  }

  function showRaw(url, body, response, text) {
    last.request = JSON.stringify(body, null, 2);
    last.response = text;
    let pretty = text;
    try { pretty = JSON.stringify(JSON.parse(text), null, 2); last.response = pretty; } catch { /* not JSON */ }
    // The header, not the token: the screen and a screenshot never show it.
    const auth = storedToken() ? "  authorization: Bearer <token>" : "";
    $("raw-line").textContent = `POST ${url}  content-type: application/json${auth}`;
    $("raw-request").textContent = JSON.stringify(body, (k, v) =>
      typeof v === "string" && v.length > SHOWN_CHARS ? `${v.slice(0, SHOWN_CHARS)}… (${v.length} characters; Copy has all)` : v, 2);
    $("raw-status").textContent = `HTTP ${response.status} ${response.statusText}  ${response.headers.get("content-type") || ""}`;
    $("raw-response").textContent = pretty;
    $("raw").hidden = false;
  }

  async function copy(which, button) {
    try {
      await navigator.clipboard.writeText(last[which]);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Select and copy";
    }
    setTimeout(() => { button.textContent = which === "request" ? "Copy request" : "Copy response"; }, 1500);
  }

  // --- answers -----------------------------------------------------------------------------

  function bars(rows) {
    return h("div", { class: "bars" }, rows.flatMap(([name, p], i) => {
      const fill = h("div", { class: "fill" });
      fill.style.width = percent(Math.max(0, Math.min(1, p))); // CSSOM, which the CSP allows
      const best = i === 0 ? " best" : "";
      return [h("span", { class: "name" + best, text: name }), h("div", { class: "bar" + best }, fill),
        h("span", { class: "value", text: percent(p) })];
    }));
  }

  function verdict(label) {
    if (!example || !example.label) return null;
    const right = example.label === label;
    return h("span", { class: `verdict ${right ? "good" : "bad"}`,
      text: ` · data set says ${example.label} ${right ? "✓" : "✗"}` });
  }

  function showClassification(out) {
    return h("div", { class: "answer", id: "answer", "data-label": out.label },
      h("p", { class: "headline" }, out.label, " ", h("span", { class: "muted", text: percent(out.score) }), verdict(out.label)),
      bars(out.top_k.map((s) => [s.label, s.score])));
  }

  function tokens(list) {
    return h("div", { class: "tokens" }, list.map((t) =>
      h("span", { class: "token" + (t === "<unk>" ? " unknown" : ""), text: t })));
  }

  function showLanguage(out) {
    if (out.next) {
      return h("div", { class: "answer", id: "answer", "data-kind": "next" },
        h("p", { class: "headline" }, "Next words ", h("span", { class: "muted", text: "after the text as the model read it" })),
        tokens(out.tokens), bars(out.next.map((w) => [w.word, w.probability])));
    }
    if (out.perplexity !== undefined) {
      return h("div", { class: "answer", id: "answer", "data-kind": "score" },
        h("p", { class: "headline" }, `Perplexity ${number(out.perplexity)}`,
          h("span", { class: "muted", text: ` · ${out.token_count} tokens, log-probability ${number(out.log_prob)} nats` })),
        tokens(out.tokens));
    }
    return h("div", { class: "answer", id: "answer", "data-kind": "generate" },
      h("p", { class: "generated" }, out.tokens.join(" "), " ", h("span", { class: "new", text: out.text })),
      h("p", { class: "muted", text: `seed ${out.seed}${out.ended ? " · the model ended the sentence" : ""}` }));
  }

  // --- start -------------------------------------------------------------------------------

  function start() {
    $("copy-request").addEventListener("click", (e) => copy("request", e.target));
    $("copy-response").addEventListener("click", (e) => copy("response", e.target));
    $("auth-form").addEventListener("submit", useToken);
    $("forget-token").addEventListener("click", forgetToken);
    $("forget-token").hidden = !storedToken();
    $("form").addEventListener("submit", submit);
    loadCard();
  }

  // Again after a token is given, if the first try was refused.
  async function loadCard() {
    $("status").classList.remove("error");
    $("status").textContent = "Loading the model card…";
    $("status").hidden = false;
    let response;
    let loaded;
    try {
      response = await api("card.json");
      loaded = await response.json();
    } catch (err) {
      loaded = { error: err.message };
    }
    if (!response || !response.ok) {
      const why = response && response.status === 401
        ? "the API wants a bearer token"
        : `${loaded.error || loaded.message || "no answer"}. Reload to try again`;
      $("status").textContent = `The model card is not available: ${why}.`;
      $("status").classList.add("error");
      return;
    }
    card = loaded;
    $("status").hidden = true;
    renderCard();
    const plotsShown = showPlots();
    const task = TASKS[card.task];
    if (!task) {
      $("status").textContent = `This page has no form for the task ${card.task}; the model card is below.`;
      $("status").hidden = false;
      return;
    }
    $("fields").replaceChildren(...task.fields());
    if (card.task === "language-modeling") setMode();
    renderExamples();
    $("try").hidden = false;
    await plotsShown;
    document.body.dataset.ready = "true"; // for the browser test: the page is built
  }

  start();
})();
