module github.com/goshim6/goshim6

go 1.26
