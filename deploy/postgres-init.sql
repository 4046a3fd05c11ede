CREATE DATABASE profiles OWNER propylon;
