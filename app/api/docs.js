// Starts Swagger UI on the /docs page (app/api/docs.py). A file rather than an inline script,
// so the page runs under a Content-Security-Policy that allows scripts from this origin only.
'use strict'

window.addEventListener('load', function () {
  var root = document.getElementById('swagger-ui')
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    // No badge from validator.swagger.io: the page asks nothing of any other origin.
    validatorUrl: null
  })
})
