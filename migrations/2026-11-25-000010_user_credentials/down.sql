DROP VIEW user_credentials;
