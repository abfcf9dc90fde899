// The class page's graph view: the pruned circuit from /api/circuit/<id>?prune=..., laid out in layers by the
// server (logit on top), drawn with cytoscape (vendored from npm, no CDN). Moving the slider fetches the
// subgraph of the new share; clicking a group opens its page.
(function () {
  const box = document.getElementById("circuit");
  const slider = document.getElementById("prune");
  const shown = document.getElementById("prune-value");
  const status = document.getElementById("graph-status");
  const groupUrl = (id) => box.dataset.groupUrl.replace("GROUP", id);
  const cy = cytoscape({
    container: box,
    wheelSensitivity: 0.3,
    style: [
      { selector: "node", style: {
          "width": "mapData(influence, 0, 1, 26, 90)", "height": "mapData(influence, 0, 1, 26, 90)",
          "background-color": "#dfe7ef", "border-width": 3, "border-color": "#2b7bb9",
          "label": "data(caption)", "font-size": 11, "text-valign": "bottom", "text-margin-y": 4,
          "text-wrap": "wrap", "text-max-width": 110 } },
      { selector: "node[thumbnail != '']", style: { "background-image": "data(thumbnail)", "background-fit": "cover" } },
      { selector: "node[sign = '-']", style: { "border-color": "#d1495b" } },
      { selector: "edge", style: {
          "width": "mapData(influence, 0, 0.5, 1, 12)", "line-color": "#2b7bb9", "opacity": 0.75,
          "curve-style": "bezier", "target-arrow-shape": "triangle", "target-arrow-color": "#2b7bb9" } },
      { selector: "edge[sign = '-']", style: { "line-color": "#d1495b", "target-arrow-color": "#d1495b",
          "line-style": "dashed" } },
    ],
    layout: { name: "preset" },
  });
  cy.on("tap", "node", (event) => { window.location.href = groupUrl(event.target.id()); });
  let asked = 0;
  async function load(prune) {
    const ticket = ++asked;
    status.textContent = "loading ...";
    const reply = await fetch(box.dataset.api + "?prune=" + encodeURIComponent(prune));
    if (ticket !== asked) return;  // a newer position of the slider won
    if (!reply.ok) { status.textContent = "error " + reply.status; return; }
    const graph = await reply.json();
    for (const node of graph.nodes) {
      const d = node.data;
      d.caption = d.id + (d.label ? "\n" + d.label : "") + "\n" + d.influence.toFixed(2);
    }
    cy.elements().remove();
    cy.add(graph.nodes);
    cy.add(graph.edges);
    cy.fit(undefined, 30);
    status.textContent = graph.nodes.length + " groups, " + graph.edges.length + " edges";
    box.dataset.nodes = graph.nodes.length;
    box.dataset.edges = graph.edges.length;
    box.dataset.loaded = String(prune);
  }
  slider.addEventListener("input", () => { shown.textContent = slider.value; });
  slider.addEventListener("change", () => load(slider.value));
  load(slider.value);
})();
