// placeholder: replaced by the TLS and login-spec tests of issue 5
