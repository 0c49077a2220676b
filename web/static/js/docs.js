// The /docs page: starts Swagger UI (vendored, web/static/vendor/swagger-ui/)
// on this node's own OpenAPI document, /openapi.json. "Try it out" sends
// requests to the node that served the page.
'use strict';

(function start() {
  const root = document.getElementById('swagger-ui');
  window.ui = window.SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
    // No calls to the public validator service: only loopback/this node.
    validatorUrl: null,
    tryItOutEnabled: false,
    defaultModelsExpandDepth: 0,
  });
})();
