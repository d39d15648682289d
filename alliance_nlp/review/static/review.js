
/* The review app's session page, after the report's script (filters, arrow keys between rows).
   Turns each transcript row (li.u#u-N, rendered and escaped by the server) into a review row: one
   toggle per label with the model's probability, an accept button, a note and a save status. State
   comes from GET /api/sessions/{id}; every change is POSTed at once. Everything taken from the API
   is put into the page with textContent or attributes, never parsed as HTML. */
(function () {
  "use strict";
  var cfgEl = document.getElementById("report-data");
  var list = document.getElementById("utts");
  if (!cfgEl || !list) { return; }
  var cfg = JSON.parse(cfgEl.textContent);
  var LABELS = cfg.labels;
  var SHORT = cfg.short;
  var rows = {};
  var state = {};
  var total = 0;
  var errBox = document.getElementById("rv-error");
  var progText = document.getElementById("rv-progress");
  var progBar = document.getElementById("rv-bar");
  var orderSel = document.getElementById("rv-order");

  Array.prototype.forEach.call(list.querySelectorAll("li.u"), function (li) {
    rows[li.id.slice(2)] = li;
  });

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function showError(msg) {
    if (!errBox) { return; }
    errBox.textContent = msg || "";
    errBox.hidden = !msg;
  }
  function api(method, url, body) {
    var opts = {method: method, credentials: "same-origin", cache: "no-store",
                headers: {"Accept": "application/json", "X-Alliance-Review": "1"}};
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(url, opts).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) {
          var msg = (j && j.error) || ("HTTP " + r.status);
          if (r.status === 401) { msg += " (open the URL that alliance-nlp review printed)"; }
          throw new Error(msg);
        }
        return j;
      });
    });
  }
  function fmt(p) { return (typeof p === "number") ? p.toFixed(2) : "–"; }
  function has(arr, x) { return arr.indexOf(x) >= 0; }

  function progress() {
    var done = 0;
    Object.keys(state).forEach(function (k) { if (state[k].reviewed) { done += 1; } });
    if (progText) { progText.textContent = done + " of " + total + " utterances reviewed by you"; }
    if (progBar) { progBar.value = done; progBar.max = total; }
  }

  function render(i) {
    var s = state[i];
    var li = rows[i];
    s.buttons.forEach(function (b) {
      var lab = b.getAttribute("data-label");
      var on = has(s.labels, lab);
      var model = has(s.markers, lab);
      b.setAttribute("aria-pressed", on ? "true" : "false");
      b.classList.toggle("removed", model && !on);
      b.classList.toggle("added", on && !model);
      b.querySelector(".mk").textContent = on ? "\u2713" : (model ? "\u2212" : "+");
      var p = s.probabilities[lab];
      b.title = SHORT[lab] + ": model probability " + fmt(p) + (model ? " (tagged by the model)" : " (not tagged)") +
        "; " + (on ? "you keep it" : "you leave it out") + ". Key " + (LABELS.indexOf(lab) + 1) + ".";
    });
    li.classList.toggle("rv-done", s.reviewed);
    li.classList.toggle("rv-dis", s.disagreement);
    var st = s.status;
    st.classList.remove("done", "err");
    if (s.error) {
      st.textContent = "not saved: " + s.error;
      st.classList.add("err");
    } else if (s.inflight) {
      st.textContent = "saving\u2026";
    } else if (s.reviewed) {
      st.textContent = "\u2713 reviewed";
      st.classList.add("done");
    } else {
      st.textContent = "not reviewed (model's labels)";
    }
    s.hint.textContent = !s.disagreement ? "" : "Reviewers disagree: " + Object.keys(s.others).map(function (r) {
      var l = s.others[r];
      return r + ": " + (l.length ? l.map(function (x) { return SHORT[x]; }).join(", ") : "no label");
    }).join("; ");
    s.cc.textContent = !s.closest ? "" : "closest call: " + SHORT[s.closest] + " " +
      fmt(s.probabilities[s.closest]) + " (threshold " + fmt(s.thresholds[s.closest]) + ")";
  }

  function save(i) {
    var s = state[i];
    if (s.inflight) { s.dirty = true; return; }
    s.inflight = true;
    s.dirty = false;
    s.error = null;
    render(i);
    var body = {utterance: Number(i), labels: s.labels.slice(), note: s.note.value};
    s.sentNote = body.note;
    api("POST", cfg.api + "/corrections", body).then(function (j) {
      s.inflight = false;
      s.reviewed = true;
      s.savedNote = j.saved.note;
      showError("");
      if (s.dirty) { save(i); } else { render(i); }
      progress();
    }).catch(function (e) {
      s.inflight = false;
      s.error = e.message;
      render(i);
      showError("A correction was not saved (utterance #" + i + "): " + e.message +
        ". Your change is still shown; change it again or press a to retry.");
    });
  }

  function toggle(i, lab) {
    var s = state[i];
    if (has(s.labels, lab)) {
      s.labels = s.labels.filter(function (x) { return x !== lab; });
    } else {
      s.labels = LABELS.filter(function (x) { return x === lab || has(s.labels, x); });
    }
    save(i);
  }

  function visibleRows() {
    return Array.prototype.filter.call(list.querySelectorAll("li.u"), function (r) { return !r.hidden; });
  }
  function focusRow(li) {
    if (!li) { return; }
    Array.prototype.forEach.call(list.querySelectorAll("li.u"), function (r) { r.tabIndex = -1; });
    li.tabIndex = 0;
    li.scrollIntoView({block: "center"});
    li.focus({preventScroll: true});
  }
  function nextRow(li) {
    var vis = visibleRows();
    var k = vis.indexOf(li);
    return k >= 0 && k + 1 < vis.length ? vis[k + 1] : null;
  }
  function nextUnreviewed(from) {
    var vis = visibleRows();
    var start = from ? vis.indexOf(from) + 1 : 0;
    for (var n = 0; n < vis.length; n += 1) {
      var r = vis[(start + n) % vis.length];
      var s = state[r.id.slice(2)];
      if (s && !s.reviewed) { return r; }
    }
    return null;
  }
  function accept(i) {
    save(i);
    var nx = nextRow(rows[i]);
    if (nx) { focusRow(nx); }
  }

  function build(u) {
    var i = String(u.index);
    var li = rows[i];
    if (!li) { return; }
    var bar = el("div", "rv");
    bar.setAttribute("role", "group");
    bar.setAttribute("aria-label", "Your labels for utterance #" + i);
    var s = {labels: u.labels.slice(), markers: u.markers.slice(), probabilities: u.probabilities || {},
             thresholds: u.thresholds || {}, reviewed: u.reviewed, others: u.others || {},
             disagreement: u.disagreement, closest: u.closest, rank: u.rank, index: u.index,
             buttons: [], inflight: false, dirty: false, error: null, savedNote: u.note || "", sentNote: u.note || ""};
    LABELS.forEach(function (lab, k) {
      var b = el("button", "lab " + lab);
      b.type = "button";
      b.tabIndex = -1;
      b.setAttribute("data-label", lab);
      b.appendChild(el("span", "mk"));
      b.appendChild(el("span", "nm", (k + 1) + " " + SHORT[lab]));
      b.appendChild(el("span", "pv", fmt(s.probabilities[lab])));
      b.addEventListener("click", function (ev) { ev.stopPropagation(); toggle(i, lab); });
      s.buttons.push(b);
      bar.appendChild(b);
    });
    var ok = el("button", "acc", "Accept (a)");
    ok.type = "button";
    ok.tabIndex = -1;
    ok.title = "Keep the labels shown (\u2713) and go to the next utterance";
    ok.addEventListener("click", function () { accept(i); });
    bar.appendChild(ok);
    var note = el("input", "note");
    note.type = "text";
    note.maxLength = 2000;
    note.tabIndex = -1;
    note.placeholder = "note (n)";
    note.value = u.note || "";
    note.setAttribute("aria-label", "Note on utterance #" + i);
    note.addEventListener("change", function () { if (note.value !== s.sentNote) { save(i); } });
    note.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") {
        ev.preventDefault();
        if (note.value !== s.sentNote) { save(i); }
        focusRow(li);
      } else if (ev.key === "Escape") {
        ev.preventDefault();
        note.value = s.savedNote;
        focusRow(li);
      }
      ev.stopPropagation();
    });
    bar.appendChild(note);
    s.note = note;
    bar.appendChild(el("span", "br"));
    s.status = el("span", "st");
    s.status.setAttribute("aria-live", "polite");
    bar.appendChild(s.status);
    s.hint = el("span", "hint dis");
    bar.appendChild(s.hint);
    s.cc = el("span", "hint cc");
    bar.appendChild(s.cc);
    s.controls = [ok, note].concat(s.buttons);
    li.appendChild(bar);
    state[i] = s;
    render(i);
  }

  /* only the current row's controls are in the Tab order (the rows themselves move with the arrows) */
  var current = null;
  list.addEventListener("focusin", function (ev) {
    var li = ev.target.closest ? ev.target.closest("li.u") : null;
    if (!li || li === current) { return; }
    if (current && state[current.id.slice(2)]) {
      state[current.id.slice(2)].controls.forEach(function (c) { c.tabIndex = -1; });
    }
    current = li;
    if (state[li.id.slice(2)]) { state[li.id.slice(2)].controls.forEach(function (c) { c.tabIndex = 0; }); }
  });

  list.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    var t = ev.target;
    if (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA") { return; }
    var li = t.closest ? t.closest("li.u") : null;
    if (!li || !state[li.id.slice(2)]) { return; }
    var i = li.id.slice(2);
    var k = "123456".indexOf(ev.key);
    if (k >= 0 && ev.key.length === 1) {
      ev.preventDefault();
      toggle(i, LABELS[k]);
    } else if (ev.key === "a" || (ev.key === "Enter" && t === li)) {
      ev.preventDefault();
      accept(i);
    } else if (ev.key === "n") {
      ev.preventDefault();
      state[i].note.focus();
    } else if (ev.key === "u") {
      ev.preventDefault();
      focusRow(nextUnreviewed(li));
    }
  });

  function applyOrder() {
    var mode = orderSel ? orderSel.value : "transcript";
    var keys = Object.keys(rows);
    keys.sort(function (a, b) {
      var sa = state[a], sb = state[b];
      if (mode === "informative" && sa && sb) { return sa.rank - sb.rank; }
      return Number(a) - Number(b);
    });
    keys.forEach(function (k) { list.appendChild(rows[k]); });
    list.classList.toggle("reordered", mode === "informative");
    var vis = visibleRows();
    if (vis.length) {
      Array.prototype.forEach.call(list.querySelectorAll("li.u"), function (r) { r.tabIndex = -1; });
      vis[0].tabIndex = 0;
    }
  }
  if (orderSel) { orderSel.addEventListener("change", applyOrder); }
  var nextBtn = document.getElementById("rv-next");
  if (nextBtn) {
    nextBtn.addEventListener("click", function () {
      var r = nextUnreviewed(current);
      if (r) { focusRow(r); } else { showError("Every utterance shown has been reviewed."); }
    });
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "u" || ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    var t = ev.target;
    if (t !== document.body) { return; }
    ev.preventDefault();
    focusRow(nextUnreviewed(null));
  });

  api("GET", cfg.api).then(function (data) {
    total = data.utterances.length;
    data.utterances.forEach(function (u) {
      u.thresholds = data.thresholds;
      build(u);
    });
    progress();
    applyOrder();
    document.body.setAttribute("data-review-ready", "1");
  }).catch(function (e) {
    showError("Could not load the session: " + e.message);
    if (progText) { progText.textContent = "not loaded"; }
  });
}());
