// The dashboard's tables: the decision journal, the drift alarms and the snapshots with their actions.
// Each is rebuilt only when its data changed, so that open evidence and keyboard focus stay put.

import { fmtClock, fmtInt, fmtMetric, h, modeSpan } from "./format.js";

const rendered = {}; // what each table shows now, as a signature

function changed(key, value) {
  const signature = JSON.stringify(value);
  if (rendered[key] === signature) return false;
  rendered[key] = signature;
  return true;
}

const openEvidence = new Set(); // decisions whose evidence the operator opened

export function renderJournal(list, decisions) {
  if (!changed("journal", decisions)) return;
  if (!decisions.length) {
    list.replaceChildren(h("li", { class: "empty-row", text: "No decisions yet. Alarms, rollbacks, resumes, promotions and operator commands appear here." }));
    return;
  }
  list.replaceChildren(...decisions.map((d) => {
    const key = `${d.time}|${d.action}|${d.at}`;
    const snapshots = d.evidence?.snapshots || {};
    const details = h("details", { ontoggle: (ev) => {
      if (ev.target.open) openEvidence.add(key);
      else openEvidence.delete(key);
    } }, h("summary", { text: "evidence" }), h("pre", { text: JSON.stringify(d.evidence, null, 2) }));
    details.open = openEvidence.has(key);
    return h("li", { class: `action-${d.action}`, "data-testid": "decision", "data-action": d.action, "data-trigger": d.trigger },
      h("div", { class: "head" },
        h("span", { class: `badge ${d.action}`, text: d.action }),
        h("span", { class: `badge ${d.trigger}`, text: d.trigger }),
        h("span", {}, modeSpan(d.source), " → ", modeSpan(d.target)),
        h("span", { class: "meta", text: `event ${fmtInt(d.at)} · ${fmtClock(d.time)}` })),
      h("p", { class: "reason", text: d.reason }),
      Object.keys(snapshots).length
        ? h("div", { class: "meta" }, "snapshots: ", Object.entries(snapshots).map(([role, id]) =>
          h("span", { class: "chip mono", text: `${role.replace("_", "-")} ${id}` })))
        : null,
      details);
  }));
}

export function renderAlarms(body, alarms) {
  if (!changed("alarms", alarms)) return;
  if (!alarms.length) {
    body.replaceChildren(h("tr", {}, h("td", { colspan: 4, class: "empty-row", text: "No drift alarms." })));
    return;
  }
  body.replaceChildren(...alarms.map((a) => h("tr", { "data-testid": "alarm-row", title: `window ${JSON.stringify(a.window)} against reference ${JSON.stringify(a.reference)}` },
    h("td", { class: "num", text: fmtInt(a.at) }),
    h("td", { class: "mono", text: `${a.detector}` }),
    h("td", { text: a.value != null ? `${a.statistic} ${fmtMetric(a.value)} > ${fmtMetric(a.threshold)}` : a.statistic || "–" }),
    h("td", { class: "num", text: fmtInt(a.onset) }))));
}

// `live`: the snapshot the live model descends from; `restored`: the one a quarantine restored;
// `actions`: { pin(snapshot), rollback(snapshot) } for the row buttons.
export function renderSnapshots(body, metricHead, snapshots, { live, restored }, actions) {
  if (!changed("snapshots", [snapshots, live, restored])) return;
  const name = snapshots.find((x) => x.metric?.name)?.metric.name || "metric";
  metricHead.textContent = `Rolling ${name}`;
  if (!snapshots.length) {
    body.replaceChildren(h("tr", {}, h("td", { colspan: 10, class: "empty-row", text: "No snapshots yet." })));
    return;
  }
  body.replaceChildren(...snapshots.map((snap) => snapshotRow(snap, live, restored, actions)));
}

function snapshotRow(snap, live, restored, actions) {
  const id = snap.id;
  const classes = [id === live ? "is-live" : "", id === restored ? "is-restored" : "", snap.valid ? "" : "is-invalid"];
  return h("tr", {
    class: classes.join(" ").trim() || null, "data-testid": "snapshot-row", "data-snapshot-id": id,
    "data-reason": snap.reason, "data-events": snap.events, "data-mode": snap.mode,
  },
  h("td", { class: "mono" }, id,
    id === live ? h("span", { class: "tag live", title: "the live model descends from this snapshot", text: "live" }) : null,
    id === restored ? h("span", { class: "tag restored", title: "the quarantine restored this snapshot's model", text: "restored" }) : null),
  h("td", { text: snap.reason || "–" }),
  h("td", { class: "num", text: fmtInt(snap.events) }),
  h("td", { class: "num", text: fmtMetric(snap.metric?.rolling) }),
  h("td", {}, snap.mode ? modeSpan(snap.mode) : "–"),
  h("td", { class: "mono", text: snap.restored_from || "–" }),
  h("td", { text: fmtClock(snap.created) }),
  h("td", {}, snap.pinned ? h("span", { class: "tag pinned", text: "pinned" }) : "–"),
  h("td", { text: snap.valid ? "valid" : `refused: ${snap.problem}` }),
  h("td", { class: "actions" },
    h("button", {
      type: "button", class: "small", "data-testid": "pin-button",
      "aria-label": `${snap.pinned ? "Unpin" : "Pin"} snapshot ${id}`,
      title: snap.pinned ? "Let retention delete it again" : "Keep it through retention",
      text: snap.pinned ? "Unpin" : "Pin", onclick: () => actions.pin(snap),
    }),
    h("button", {
      type: "button", class: "small", "data-testid": "rollback-button", "aria-label": `Roll back to snapshot ${id}`,
      disabled: !snap.valid, text: "Roll back to this", onclick: () => actions.rollback(snap),
    })));
}
