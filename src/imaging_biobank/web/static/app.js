/* imaging-biobank pages: a little progressive enhancement, nothing the pages need to work.
   - [data-autosubmit] controls submit their form when changed (catalogue facets);
   - the cohort builder adds and removes criteria, keeps each criterion's operators and
     value suggestions right for its key, and counts live through POST /api/cohorts/count
     (the session cookie is the token). */
"use strict";

(function () {
  document.querySelectorAll("[data-autosubmit]").forEach(function (control) {
    control.addEventListener("change", function () {
      var form = control.form;
      if (!form) return;
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    });
  });

  var builder = document.getElementById("builder");
  var menusNode = document.getElementById("menus");
  if (!builder || !menusNode) return;
  var menus = JSON.parse(menusNode.textContent);
  var list = document.getElementById("criteria");
  var rows = list.querySelectorAll("li.criterion");
  var blank = rows[rows.length - 1].cloneNode(true);
  var sequence = 0;
  var timer = null;

  function number(n) {
    return typeof n === "number" ? n.toLocaleString("en").replace(/,/g, "\u202f") : String(n);
  }
  function shortName(id) {
    var at = id.indexOf(":collection:");
    return at >= 0 ? id.slice(at + 12) : id.slice(id.lastIndexOf(":") + 1);
  }
  function element(tag, text, attributes) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    Object.keys(attributes || {}).forEach(function (k) { node.setAttribute(k, attributes[k]); });
    return node;
  }

  function setupRow(row) {
    var key = row.querySelector("select.key");
    var op = row.querySelector("select.op");
    var value = row.querySelector("input.value");
    var param = row.querySelector("input.param");
    var paramLabel = row.querySelector(".param-label");
    var remove = row.querySelector("button.remove");
    function refresh() {
      var info = menus.keys[key.value];
      var family = info && info.family;
      paramLabel.hidden = !family;
      if (!family) param.value = "";
      if (family && info.names) param.setAttribute("list", info.names);
      else param.removeAttribute("list");
      var current = op.value;
      var allowed = info ? info.operators : Object.keys(menus.operators);
      op.textContent = "";
      allowed.forEach(function (name) {
        var option = element("option", menus.operators[name], { value: name });
        if (name === current) option.selected = true;
        op.appendChild(option);
      });
      if (info && info.values) value.setAttribute("list", info.values);
      else value.removeAttribute("list");
      var hint = op.value === "BETWEEN" ? "low, high" :
        (op.value === "IN" || op.value === "NOT_IN") ? "values, comma-separated" : "value";
      if (info && info.unit) hint += " (" + info.unit + ")";
      value.placeholder = hint;
      key.title = info ? info.help || key.value : "";
    }
    key.addEventListener("change", function () { refresh(); schedule(); });
    op.addEventListener("change", function () { refresh(); schedule(); });
    value.addEventListener("input", schedule);
    value.addEventListener("change", schedule);
    param.addEventListener("input", schedule);
    remove.hidden = false;
    remove.addEventListener("click", function () {
      if (list.children.length > 1) row.remove();
      else { key.value = ""; value.value = ""; refresh(); }
      schedule();
    });
    refresh();
  }

  function addRow() {
    var row = blank.cloneNode(true);
    row.querySelector("select.key").value = "";
    row.querySelector("input.value").value = "";
    row.querySelector("input.param").value = "";
    list.appendChild(row);
    setupRow(row);
    return row;
  }

  // keep the filled criteria and one empty row to start from
  var filled = 0;
  Array.prototype.slice.call(rows).forEach(function (row) {
    if (row.querySelector("select.key").value) { filled += 1; setupRow(row); }
    else row.remove();
  });
  if (!filled) addRow();
  var add = document.getElementById("add-criterion");
  add.hidden = false;
  add.addEventListener("click", function () {
    addRow().querySelector("select.key").focus();
  });
  builder.addEventListener("change", function (event) {
    if (event.target.name === "match" || event.target.name === "purpose" || event.target.name === "by") schedule();
  });

  // a value as the text form reads it: a number when it reads as one
  function scalar(text) {
    var trimmed = text.trim();
    return /^[+-]?\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : trimmed;
  }

  function collect() {
    var leaves = [];
    var problems = [];
    list.querySelectorAll("li.criterion").forEach(function (row, i) {
      var key = row.querySelector("select.key").value;
      var op = row.querySelector("select.op").value;
      var text = row.querySelector("input.value").value;
      var info = menus.keys[key];
      if (!key || !text.trim()) return;
      if (info && info.family) {
        var name = row.querySelector("input.param").value.trim();
        if (!name) { problems.push("criterion " + (i + 1) + ": " + key + " needs the name after the dot"); return; }
        key = info.family + "." + name;
      }
      var value;
      if (op === "IN" || op === "NOT_IN" || op === "BETWEEN") {
        value = text.split(",").map(function (p) { return p.trim(); })
          .filter(function (p) { return p !== ""; }).map(scalar);
        if (op === "BETWEEN" && value.length !== 2) {
          problems.push("criterion " + (i + 1) + ": between takes two values: low, high");
          return;
        }
      } else {
        value = scalar(text);
      }
      leaves.push({ key: key, type: op, value: value });
    });
    var match = builder.querySelector("input[name=match]:checked");
    var operand = match ? match.value : "AND";
    var locator = leaves.length === 0 ? null :
      leaves.length === 1 ? leaves[0] : { operand: operand, children: leaves };
    return { locator: locator, problems: problems };
  }

  function checked(name) {
    return Array.prototype.slice.call(builder.querySelectorAll("input[name=" + name + "]:checked"))
      .map(function (box) { return box.value; }).filter(function (v) { return v !== ""; });
  }

  function schedule() {
    if (timer) clearTimeout(timer);
    timer = setTimeout(count, 300);
  }

  var status = document.getElementById("count-status");
  var errorBox = document.getElementById("count-error");
  var body = document.getElementById("count-body");

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  function remember() {
    var params = new URLSearchParams(new FormData(builder));
    params.delete("q");
    history.replaceState(null, "", "/cohort?" + params.toString());
  }

  function count() {
    var query = collect();
    remember();
    if (query.problems.length) { showError(query.problems.join("; ")); return; }
    if (!query.locator) {
      showError("");
      body.textContent = "";
      body.appendChild(element("p", "Choose a criterion to count donors.", { class: "note" }));
      document.getElementById("query-text").textContent = "";
      document.getElementById("query-json").textContent = "";
      status.textContent = "";
      return;
    }
    var mine = ++sequence;
    status.textContent = "Counting\u2026";
    fetch("/api/cohorts/count", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify({ locator: query.locator, purpose: checked("purpose"), by: checked("by") })
    }).then(function (response) {
      return response.json().then(function (data) { return { ok: response.ok, data: data }; });
    }).then(function (answer) {
      if (mine !== sequence) return;
      if (!answer.ok) {
        var detail = answer.data.detail || "the query cannot be counted";
        (answer.data.errors || []).forEach(function (e) { detail += "; " + e.where + ": " + e.message; });
        showError(detail);
        status.textContent = "";
        return;
      }
      showError("");
      render(answer.data);
      status.textContent = "Updated.";
    }).catch(function () {
      if (mine === sequence) { showError("the server did not answer"); status.textContent = ""; }
    });
  }

  function table(head, rowsOf, className) {
    var t = element("table", null, { class: className });
    if (head) {
      var thead = element("thead");
      var tr = element("tr");
      head.forEach(function (h) { tr.appendChild(element("th", h, { scope: "col" })); });
      thead.appendChild(tr);
      t.appendChild(thead);
    }
    var tbody = element("tbody");
    rowsOf.forEach(function (cells) {
      var tr = element("tr");
      cells.forEach(function (cell, i) {
        var td = element(i === 0 ? "th" : "td", null, i === 0 ? { scope: "row" } : {});
        if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell;
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    });
    t.appendChild(tbody);
    return t;
  }

  function render(answer) {
    body.textContent = "";
    var dl = element("dl", null, { class: "counts big", id: "totals" });
    ["donors", "samples", "studies", "series", "instances"].forEach(function (name) {
      var div = element("div");
      div.appendChild(element("dt", name));
      div.appendChild(element("dd", number(answer.totals[name]), { "data-count": name }));
      dl.appendChild(div);
    });
    body.appendChild(dl);
    if (answer.obfuscated) body.appendChild(element("p", "Obfuscated counts.", { class: "small" }));
    if (answer.by_collection.length) {
      body.appendChild(element("h3", "By collection"));
      body.appendChild(table(["Collection", "Donors", "Samples", "Series", "Instances"],
        answer.by_collection.map(function (r) {
          var link = element("a", shortName(r.collection), { href: "/collections/" + r.collection });
          return [link, number(r.donors), number(r.samples), number(r.series), number(r.instances)];
        }), "by-collection"));
    }
    Object.keys(answer.strata).forEach(function (name) {
      var title = (menus.strata_titles[name] || name).toLowerCase();
      body.appendChild(element("h3", "Donors by " + title));
      var values = answer.strata[name];
      var keys = Object.keys(values);
      if (!keys.length) { body.appendChild(element("p", "none", { class: "note" })); return; }
      body.appendChild(table(null, keys.map(function (k) { return [k, number(values[k])]; }), "stratum"));
    });
    document.getElementById("query-text").textContent = answer.query;
    document.getElementById("query-json").textContent = JSON.stringify(answer.locator, null, 2);
    document.getElementById("q").value = answer.query;
    var manifest = document.getElementById("manifest");
    if (manifest) manifest.querySelector("input[name=q]").value = answer.query;
  }

  var manifestForm = document.getElementById("manifest");
  if (manifestForm) {
    manifestForm.addEventListener("submit", function () {
      manifestForm.querySelectorAll("input[name=purpose]").forEach(function (n) { n.remove(); });
      checked("purpose").forEach(function (flag) {
        manifestForm.appendChild(element("input", null, { type: "hidden", name: "purpose", value: flag }));
      });
    });
  }
})();
