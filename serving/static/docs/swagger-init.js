// Starts Swagger UI on /docs. A file of its own, not an inline script: the hub's Content-Security-Policy allows
// scripts from its own origin only.
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi"),
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // The default sends the document's URL to a public validator service and shows its badge from there.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis]
  });
})();
