"""Pages for people: templates, sessions in cookies, CSRF, translations, static assets."""
